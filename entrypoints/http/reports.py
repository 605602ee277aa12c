"""/api/v1/reports: receivables aging and revenue by month (read models, `invoice:read`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from litestar import Router, get
from litestar.params import QueryParameter

from application.reports import ReceivablesReport, ReportQueries, RevenueReport
from entrypoints.http.deps import Ctx, Svc


@get("/receivables", sync_to_thread=False)
def receivables(
    ctx: Ctx,
    services: Svc,
    as_of: Annotated[
        date | None,
        QueryParameter(name="asOf", description="YYYY-MM-DD; default today (UTC)"),
    ] = None,
) -> ReceivablesReport:
    return services.get(ReportQueries).receivables(ctx, as_of)


@get("/revenue", sync_to_thread=False)
def revenue(
    ctx: Ctx,
    services: Svc,
    from_month: Annotated[
        str | None, QueryParameter(name="from", description="first month, YYYY-MM")
    ] = None,
    to_month: Annotated[
        str | None, QueryParameter(name="to", description="last month, YYYY-MM (inclusive)")
    ] = None,
) -> RevenueReport:
    return services.get(ReportQueries).revenue(ctx, from_month, to_month)


router = Router(path="/reports", route_handlers=[receivables, revenue], tags=["reports"])
