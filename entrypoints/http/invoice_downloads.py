"""/api/v1/billing/invoices/{id}/download: an invoice as a PDF file."""

from __future__ import annotations

from uuid import UUID

from litestar import Response, Router, get
from litestar.params import FromPath

from application.invoice_documents import InvoiceDownloads
from entrypoints.http.deps import Ctx, Svc

PDF = "application/pdf"


@get("/invoices/{invoice_id:uuid}/download", sync_to_thread=False, media_type=PDF)
def download(invoice_id: FromPath[UUID], ctx: Ctx, services: Svc) -> Response[bytes]:
    """The invoice as it stands (Draft, Issued, paid or void), as an A4 PDF attachment."""
    name, content = services.get(InvoiceDownloads).pdf(ctx, invoice_id)
    return Response(
        content=content,
        media_type=PDF,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            # An invoice names a customer and what it owes: no shared cache keeps a copy.
            "Cache-Control": "private, no-store",
        },
    )


router = Router(path="/billing", route_handlers=[download], tags=["billing"])
