# One image for every motcua process; each compose service picks its command
# (motcua migrate | ingest | metrics | api). Configuration is environment only (MOTCUA_*).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid/gid, so file ownership on mounted volumes is predictable.
RUN groupadd --system --gid 10001 motcua \
 && useradd --system --uid 10001 --gid motcua --home-dir /var/lib/motcua --create-home \
        --shell /usr/sbin/nologin motcua

WORKDIR /src

# Dependencies first, in their own layer: they are large (chdb alone is ~0.5 GB) and change far
# less often than the code, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The package itself; package data (core/storage/migrations/*.sql, schemas/v1/**/*.json)
# is declared in pyproject.toml and lands in site-packages, so /src is not needed at run time.
COPY schemas ./schemas
COPY core ./core
COPY services ./services
COPY tools ./tools
COPY motcua ./motcua
# The check runs from / so it imports the installed package, not the source tree.
RUN pip install --no-cache-dir . \
 && cd / \
 && python -c "from core.storage.migrate import available; assert available(), 'no migrations installed'" \
 && rm -rf /src

WORKDIR /var/lib/motcua
USER motcua
# Only used by the embedded modes (no MOTCUA_NATS_URL / MOTCUA_CLICKHOUSE_URL); compose sets both.
ENV MOTCUA_DATA_DIR=/var/lib/motcua/data

EXPOSE 8000
CMD ["motcua", "api"]
