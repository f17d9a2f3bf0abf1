"""SQL building blocks shared by the panels: filters on the template variables, the latest stored
figures, rates divided at read time.

Sources (all written by the project's own services, never recomputed here):
- the figures themselves are not read here: boards ask the API (tools/grafana/api_panels.py).
- target_status (0012): every plan target's status per agency ('' = the scope as a whole).
- dossier_days (0020, 0032): the metrics service's day counts; a panel reads its `received` rows
  (dossiers received per day × agency × domain × level × channel, summed by sign).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from core.figures.definitions import METRICS
from core.plans import forecast
from core.zone import TZ

# The agency the board shows, as the API means it (core/figures/scope.py): `${agency}` and,
# with `${scope}` = 'true', everything under it in the org tree valid on the range's last local
# day; a code unknown to that tree still counts its own rows. The recursion stops at a depth no
# real tree reaches, so a cycle in bad reference data cannot run away.
SUBTREE = (
    "WITH RECURSIVE tree AS (SELECT agency_code, parent_code FROM agencies_current "
    f"WHERE valid_from <= toDate($__toTime, '{TZ}') "
    f"AND (valid_to IS NULL OR valid_to > toDate($__toTime, '{TZ}'))), "
    "sub AS (SELECT ${agency:singlequote} AS code, 0 AS depth UNION ALL "
    "SELECT t.agency_code, sub.depth + 1 FROM tree AS t INNER JOIN sub ON t.parent_code = sub.code "
    "WHERE ${scope:singlequote} = 'true' AND sub.depth < 16) SELECT code FROM sub"
)


def agency_filter(col: str = "agency_code") -> str:
    return f"{col} IN ({SUBTREE})"


def intake_filter() -> str:
    """Filters for the day counts' receipts, whose rows carry their own domain and level."""
    return (
        f"{agency_filter()} AND $__conditionalAll(domain_code IN (${{domain:singlequote}}), "
        "$domain) AND $__conditionalAll(level IN (${level:singlequote}), $level)"
    )


def quoted(values: Iterable[str]) -> str:
    """A list of trusted identifiers (metric ids, statuses) as SQL literals."""
    out = []
    for v in values:
        if not v.replace("_", "").replace(".", "").replace("-", "").replace(":", "").isalnum():
            raise ValueError(f"not an identifier: {v!r}")
        out.append(f"'{v}'")
    return ", ".join(out)


def text_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def labels(column: str, mapping: Mapping[str, str]) -> str:
    """Vietnamese labels for codes, the code itself when unmapped."""
    keys = ", ".join(text_literal(k) for k in mapping)
    values = ", ".join(text_literal(v) for v in mapping.values())
    return f"transform(toString({column}), [{keys}], [{values}], toString({column}))"


def metric_label(column: str = "metric") -> str:
    return labels(column, {m.id: m.label for m in METRICS.values()})


# Year or month of the dashboard's end, in local time.
PERIOD_OF_END = {
    "year": f"toStartOfYear(toDate($__toTime, '{TZ}'))",
    "month": f"toStartOfMonth(toDate($__toTime, '{TZ}'))",
}
MONTHS_IN_RANGE = (
    f"period_start >= toStartOfMonth(toDate($__fromTime, '{TZ}')) "
    f"AND period_start <= toDate($__toTime, '{TZ}')"
)


def latest_figures(metrics: Iterable[str], period: str = "year", *, trend: bool = False) -> str:
    """One row per (metric, agency, period_start): the latest stored numerator and denominator as
    of the dashboard's end. `trend`: every month in the time range instead of the current period."""
    when = MONTHS_IN_RANGE if trend else f"period_start = {PERIOD_OF_END[period]}"
    return (
        "SELECT metric, agency_code, period_start, "
        "argMax(numerator, computed_at) AS num, argMax(denominator, computed_at) AS den "
        f"FROM metric_snapshots WHERE period = '{'month' if trend else period}' "
        f"AND metric IN ({quoted(metrics)}) AND computed_at <= $__toTime AND {when} "
        f"AND {agency_filter()} GROUP BY metric, agency_code, period_start"
    )


def rate(num: str = "num", den: str = "den") -> str:
    """A ratio of sums, NULL (not 0) when nothing is counted."""
    return f"if(sum({den}) = 0, NULL, sum({num}) / sum({den}))"


def metric_rate(metric: str) -> str:
    """The rate of one metric inside a query over latest_figures() rows of several metrics."""
    return (
        f"if(sumIf(den, metric = '{metric}') = 0, NULL, "
        f"sumIf(num, metric = '{metric}') / sumIf(den, metric = '{metric}'))"
    )


AGENCY_NAMES = (
    "(SELECT agency_code, argMax(name, valid_from) AS agency_name "
    "FROM agencies_current GROUP BY agency_code)"
)

# The same words as the page and the API (one source: the forecast module).
STATUS_LABELS = forecast.STATUS_LABELS

# Nullable columns travel in one tuple: argMax skips NULL arguments, and a figure that became
# NULL must not fall back to an older value.
_TARGET_TUPLE = (
    "(period_end, metric, comparator, threshold, numerator, denominator, value, status, "
    "forecast, budget, needed, burn_rates)"
)
_TARGET_FIELDS = (
    "period_end",
    "metric",
    "comparator",
    "threshold",
    "numerator",
    "denominator",
    "value",
    "status",
    "forecast",
    "budget",
    "needed",
    "burn_rates",
)


def latest_targets(where: str = "1") -> str:
    """The latest status of every (plan, target, agency, period) of the selected plan whose period
    overlaps the dashboard's range, as evaluated by the dashboard's end."""
    fields = ", ".join(f"latest.{i} AS {name}" for i, name in enumerate(_TARGET_FIELDS, start=1))
    return (
        f"SELECT plan, target_id, agency_code, period_start, {fields}, "
        "last_evaluated_at AS evaluated_at FROM ("
        f"SELECT plan, target_id, agency_code, period_start, "
        f"argMax({_TARGET_TUPLE}, evaluated_at) AS latest, "
        "max(evaluated_at) AS last_evaluated_at "
        "FROM target_status WHERE plan = ${plan:singlequote} AND evaluated_at <= $__toTime "
        f"AND period_start <= toDate($__toTime, '{TZ}') "
        f"AND period_end >= toDate($__fromTime, '{TZ}') AND ({where}) "
        "GROUP BY plan, target_id, agency_code, period_start)"
    )


def target_agency_filter() -> str:
    """Agency rows follow the agency variable; the scope-as-a-whole rows ('') always show."""
    return f"(agency_code = '' OR ({agency_filter()}))"
