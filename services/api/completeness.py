"""The completeness of a figure's population, for the figure routes and the public page
(issue 18): what the source systems reported in their daily manifests against what motcua holds,
over the figure's period and agency scope, judged at the figure's instant.

One query per answer (services/metrics/completeness.py summary_by_agency), run beside the
figure's own reads, never per row or group: the answer keeps it per agency, so a group, or an
agency with its subtree, is summed from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from services.api.deps import ApiContext
from services.api.schemas import Completeness as CompletenessOut
from services.metrics.completeness import Completeness, ScopeCompleteness, summary_by_agency


def scope_completeness(
    ctx: ApiContext, first: date, last: date, agencies: Sequence[str], at: datetime
) -> ScopeCompleteness:
    """The scope's completeness over [first, last] as judged by `at` (its ended days only), kept
    per agency. `agencies`: the scope after expanding the org tree; () for the whole province."""
    return summary_by_agency(
        ctx.clickhouse, first, last, at, tuple(agencies), ctx.completeness_threshold
    )


def out(completeness: Completeness) -> CompletenessOut:
    return CompletenessOut(**completeness.as_dict())
