"""The API process's knobs (MOTCUA_API_*, the completeness threshold and the bootstrap admin key;
the shared MOTCUA_* settings are inherited)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from core.settings import CommonSettings
from core.storage.clickhouse import QueryLimits
from services.api.admission import AddressRate, Admission
from services.api.completeness import CompletenessCache


class ApiSettings(CommonSettings):
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_page_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long the public pages (/, /co-quan/…) are served from memory; 0: never",
    )
    api_query_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A query of the API or the public pages is stopped after this many seconds",
    )
    api_query_memory_mb: int = Field(
        default=512,
        gt=0,
        description="A query of the API or the public pages is stopped past this much memory",
    )
    api_query_concurrency: int = Field(
        default=3,
        ge=1,
        le=32,
        description="Queries the API and the public pages run at once (clients in its pool); "
        "more wait for a free one",
    )
    api_requests_per_key: int = Field(
        default=4,
        ge=1,
        description="Requests one API key runs at once; up to 32 more wait their turn, the next "
        "is answered 429 with Retry-After",
    )
    api_requests_in_flight: int = Field(
        default=16,
        ge=1,
        description="Keyed requests (/v1/…) run at once in all; one that waited 15 s is answered "
        "503 with Retry-After (the public page and health are not counted)",
    )
    api_open_data_burst: int = Field(
        default=60,
        ge=1,
        description="Open data requests (/v1/open/…, no key) one client address may make at once "
        "before it is held to MOTCUA_API_OPEN_DATA_PER_SECOND (429 with Retry-After past it)",
    )
    api_open_data_per_second: float = Field(
        default=1.0,
        gt=0,
        description="Open data requests per second one client address may make after its burst",
    )
    api_export_max_rows: int = Field(
        default=1_000_000,
        ge=1,
        description="Rows a streamed CSV export (the drill-down's) holds at most; past it the "
        "file ends with a line saying it was cut",
    )
    api_completeness_cache_seconds: float = Field(
        default=15.0,
        ge=0,
        description="How long the API keeps a live figure's completeness (the reconciler's "
        "judgments change once a step, 60 s by default); an as-of one is kept for good; 0: "
        "asked of the store for every answer",
    )
    completeness_threshold: float = Field(
        default=0.99,
        gt=0,
        le=1,
        description="A figure whose population holds less than this share of the dossiers the "
        "source systems reported in their daily manifests is marked incomplete: `incomplete` in "
        "its provenance's completeness, a note on the public page (issue 18)",
    )
    # An admin API key to make sure of at start (hashed, like every key): operators' first login
    # and tests. `motcua up` with no key at all generates one instead and prints it once.
    bootstrap_admin_key: SecretStr | None = None

    def api_completeness_cache(self) -> CompletenessCache | None:
        seconds = self.api_completeness_cache_seconds
        return CompletenessCache(live_seconds=seconds) if seconds > 0 else None

    def api_limits(self) -> QueryLimits:
        return QueryLimits(self.api_query_seconds, self.api_query_memory_mb * 1024 * 1024)

    def api_admission(self) -> Admission:
        return Admission(
            per_key=self.api_requests_per_key,
            in_flight=max(self.api_requests_in_flight, self.api_requests_per_key),
            open_data=AddressRate(
                per_second=self.api_open_data_per_second, burst=self.api_open_data_burst
            ),
        )
