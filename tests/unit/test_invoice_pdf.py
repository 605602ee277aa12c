"""Invoice PDFs: the fpdf2 renderer (every figure printed, Unicode names, wrapping, pages with the
table header repeated, right-aligned numbers, deterministic bytes, the Helvetica fallback) and the
InvoiceDownloads use case over fake read models (what it gathers, file names, who may download).

The PDF's text is read twice over: by `pdftotext` (poppler) when it is installed, and always by
`content_text`, a small pure-Python reader of fpdf2's content streams and ToUnicode maps.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID

import msgspec
import pytest

from adapters.pdf import FpdfInvoiceRenderer, find_fonts, latin1
from application.authorization import Principal, permissions_for
from application.billing import BillingQueries, InvoiceFilter
from application.context import Context
from application.customers import CustomerFilter, CustomerQueries
from application.errors import Forbidden, NotFound
from application.invoice_documents import (
    InvoiceDocument,
    InvoiceDownloads,
    InvoiceLine,
    file_name,
)
from application.queries import Document, Page, TenantQueries, TenantRecord

PDFTOTEXT = shutil.which("pdftotext")
# CI installs poppler-utils (.ci/run); there the pdftotext checks fail rather than skip.
NO_PDFTOTEXT = PDFTOTEXT is None and os.environ.get("CI", "").lower() != "true"
INVOICE_ID = UUID("1b3c5d7e-9f00-4000-8000-000000000001")
CUSTOMER = "Zoë Łukasiewicz"
TENANT_NAME = "Ørsted & Šimůnek Staffing"
LONG = (
    "Senior engineering for the onboarding portal, including discovery workshops with the "
    "customer's HR team, accessibility review against WCAG 2.2 AA, two load-test rounds and the "
    "hand-over documentation for the operations team in Kraków"
)


# -- reading a PDF back --------------------------------------------------------------------


def _objects(pdf: bytes) -> dict[int, tuple[bytes, bytes]]:
    """Object number -> (dictionary, decoded stream) of an uncompressed-xref PDF (fpdf2's)."""
    objects = {}
    for match in re.finditer(rb"(\d+) 0 obj\s*", pdf):
        start = match.end()
        end = pdf.index(b"endobj", start)
        head, stream = pdf[start:end], b""
        if b"stream" in head:
            head = pdf[start : pdf.index(b"stream", start)]
            length = int(re.search(rb"/Length (\d+)", head).group(1))  # type: ignore[union-attr]
            begin = pdf.index(b"stream", start) + len(b"stream")
            begin += 2 if pdf[begin : begin + 2] == b"\r\n" else 1
            stream = pdf[begin : begin + length]
            if b"/FlateDecode" in head:
                stream = zlib.decompress(stream)
        objects[int(match.group(1))] = (head, stream)
    return objects


def _literal(raw: bytes) -> bytes:
    """A PDF literal string's bytes, escapes resolved."""
    out, i = bytearray(), 0
    escapes = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}
    while i < len(raw):
        byte = raw[i]
        if byte == ord("\\"):
            i += 1
            if raw[i] in escapes:
                out.append(escapes[raw[i]])
            elif chr(raw[i]).isdigit():
                digits = re.match(rb"[0-7]{1,3}", raw[i : i + 3]).group(0)  # type: ignore[union-attr]
                out.append(int(digits, 8))
                i += len(digits) - 1
            else:
                out.append(raw[i])
        else:
            out.append(byte)
        i += 1
    return bytes(out)


def _cmap(stream: bytes) -> dict[int, str]:
    mapping = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", stream, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            mapping[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", stream, re.S):
        for lo, hi, dst in re.findall(rb"<(\w+)>\s*<(\w+)>\s*<(\w+)>", block):
            for offset, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                mapping[code] = chr(int(dst, 16) + offset)
    return mapping


def content_text(pdf: bytes) -> list[list[str]]:
    """Per page, the strings its content stream shows, in drawing order (one per Tj)."""
    objects = _objects(pdf)
    pages = []
    for head, _ in objects.values():
        if not re.search(rb"/Type /Page\b(?!s)", head):
            continue
        resources = int(re.search(rb"/Resources (\d+) 0 R", head).group(1))  # type: ignore[union-attr]
        fonts = {}
        for name, number in re.findall(rb"/(F\d+) (\d+) 0 R", objects[resources][0]):
            font = objects[int(number)][0]
            to_unicode = re.search(rb"/ToUnicode (\d+) 0 R", font)
            fonts[name] = _cmap(objects[int(to_unicode.group(1))][1]) if to_unicode else None
        content = objects[int(re.search(rb"/Contents (\d+) 0 R", head).group(1))][1]  # type: ignore[union-attr]
        texts, font_map = [], None
        pattern = rb"/(F\d+) [\d.]+ Tf|\(((?:\\.|[^\\)])*)\) Tj"
        for match in re.finditer(pattern, content, re.S):
            if match.group(1):
                font_map = fonts[match.group(1)]
                continue
            raw = _literal(match.group(2))
            if font_map is None:  # a core font: Latin-1 bytes
                texts.append(raw.decode("latin-1"))
            else:  # a Type0 font: two-byte glyph ids
                glyphs = (int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2))
                texts.append("".join(font_map.get(glyph, "\ufffd") for glyph in glyphs))
        pages.append(texts)
    return pages


def poppler_text(pdf: bytes, tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(
        [str(PDFTOTEXT), "-layout", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout
    return [page.splitlines() for page in out.split("\f") if page.strip()]


Extract = Callable[[bytes, Path], list[list[str]]]
EXTRACTORS = [
    pytest.param(lambda pdf, _: content_text(pdf), id="content-stream"),
    pytest.param(
        poppler_text,
        id="pdftotext",
        marks=pytest.mark.skipif(NO_PDFTOTEXT, reason="pdftotext is not installed"),
    ),
]


def flat(pages: list[list[str]]) -> str:
    return "\n".join("\n".join(page) for page in pages)


# -- documents -----------------------------------------------------------------------------


def amount(i: int) -> tuple[str, str]:
    """Line i's amount, stored and printed: distinct cents each, and 1 to 5 digits before the
    point (so right-aligned and left-aligned columns look different)."""
    whole = 3 * 10 ** (i % 4) + i
    return f"{whole}.{i:02d}", f"{whole:,}.{i:02d}"


def shows(text: str, figure: str) -> bool:
    """`figure` as a whole number in `text` (so "70.01" is not found in "1,070.01")."""
    return re.search(rf"(?<![\d,.]){re.escape(figure)}(?![\d])", text) is not None


def price(i: int) -> str:
    """Line i's unit price: finer than cents (never rounded on the page), 1 to 3 digits."""
    return f"{5 * 10 ** (i % 3) + i}.005"


def line(i: int) -> InvoiceLine:
    return InvoiceLine(
        description=f"Item {i}: consulting day" if i % 7 else f"Item {i}: {LONG}",
        quantity="2.25" if i % 2 else "12.5",
        unit_price=price(i),
        amount=amount(i)[0],
    )


def document(lines: int = 80, **changes: object) -> InvoiceDocument:
    base = InvoiceDocument(
        tenant_name=TENANT_NAME,
        tenant_email="billing@orsted.example",
        customer_name=CUSTOMER,
        customer_email="zoe@example.com",
        billing_address=["Ulica Długa 5", "Gdańsk, 80-831", "Poland"],
        invoice_id=INVOICE_ID,
        number="INV-2026-000042",
        status="PartiallyPaid",
        currency="EUR",
        issue_date=date(2026, 3, 2),
        due_date=date(2026, 4, 1),
        lines=[line(i) for i in range(1, lines + 1)],
        total="123456.78",
        paid="1000.00",
        balance="122456.78",
        payment_terms_days=30,
        as_of=datetime(2026, 3, 5, 10, 30, 15, tzinfo=UTC),
    )
    return msgspec.structs.replace(base, **changes)


@pytest.fixture(scope="module")
def renderer() -> FpdfInvoiceRenderer:
    return FpdfInvoiceRenderer()


@pytest.fixture(scope="module")
def eighty(renderer: FpdfInvoiceRenderer) -> bytes:
    return renderer.render(document(80))


def printed(name: str, renderer: FpdfInvoiceRenderer) -> str:
    """How a name prints: as it is with a Unicode font, transliterated without one."""
    return name if renderer.unicode else latin1(name)


# -- the renderer --------------------------------------------------------------------------


def test_names_print_in_the_unicode_font(renderer: FpdfInvoiceRenderer, eighty: bytes) -> None:
    # Without DejaVu the other tests here check the Helvetica fallback instead. That is fine on
    # a laptop without the font (skipped), never in CI (fonts-dejavu-core is part of its image).
    if find_fonts() is None:
        message = "DejaVu Sans is not installed: invoices print in Helvetica, transliterated"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: the Unicode font must be there)")
        pytest.skip(message)
    assert renderer.unicode
    assert b"/BaseFont /MPDFAA+DejaVuSansBook" in eighty
    assert CUSTOMER in flat(content_text(eighty))


def test_an_invoice_is_an_a4_pdf_dated_by_the_invoice(eighty: bytes) -> None:
    assert eighty.startswith(b"%PDF-1.")
    assert eighty.rstrip().endswith(b"%%EOF")
    assert b"/MediaBox [0 0 595.28 841.89]" in eighty  # A4 in points
    assert b"/CreationDate (D:20260305103015Z)" in eighty  # as_of, not the clock


@pytest.mark.parametrize("extract", EXTRACTORS)
def test_the_page_shows_every_figure_and_both_parties(
    extract: Extract, eighty: bytes, renderer: FpdfInvoiceRenderer, tmp_path: Path
) -> None:
    text = flat(extract(eighty, tmp_path))
    assert "INVOICE" in text
    assert "INV-2026-000042" in text
    assert printed(CUSTOMER, renderer) in text
    assert printed(TENANT_NAME, renderer) in text
    assert printed("Ulica Długa 5", renderer) in text
    assert "Poland" in text
    for i in range(1, 81):
        assert shows(text, amount(i)[1]), f"line {i}'s amount"
        assert shows(text, price(i)), f"line {i}'s unit price (not rounded)"
    assert "123,456.78" in text  # total
    assert "1,000.00" in text  # paid
    assert re.search(r"Balance due\s+EUR 122,456\.78", text)
    assert "2 Mar 2026" in text
    assert "1 Apr 2026" in text
    assert "Payment terms: 30 days" in text


@pytest.mark.parametrize("extract", EXTRACTORS)
def test_many_lines_run_over_pages_each_with_the_table_header(
    extract: Extract, eighty: bytes, tmp_path: Path
) -> None:
    pages = extract(eighty, tmp_path)
    assert len(pages) > 1
    for number, page in enumerate(pages, 1):
        text = "\n".join(page)
        assert re.search(r"Description\s+Qty\s+Unit price \(EUR\)\s+Amount \(EUR\)", text)
        # fpdf2 fills in the page count as a text run of its own: "Page 2 of " "4".
        assert re.search(rf"Page {number} of\s*{len(pages)}\b", text)
        assert "Please pay EUR 122,456.78 by 1 Apr 2026" in text  # the footer, on every page
    assert "Balance due" in "\n".join(pages[-1])
    assert "Balance due" not in "\n".join(pages[0])


def test_a_long_description_wraps_and_loses_no_word(eighty: bytes) -> None:
    shown = [text for page in content_text(eighty) for text in page]
    words = f"Item 7: {LONG}".split()
    assert not any(LONG in text for text in shown), "it should wrap over several lines"
    joined = " ".join(shown)
    start = joined.index("Item 7:")
    assert joined[start:].split()[: len(words)] == words


@pytest.mark.skipif(NO_PDFTOTEXT, reason="pdftotext is not installed")
def test_the_numbers_are_right_aligned(renderer: FpdfInvoiceRenderer, tmp_path: Path) -> None:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(renderer.render(document(12)))
    html = subprocess.run(
        [str(PDFTOTEXT), "-bbox", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout
    words = re.findall(r'xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)"[^>]*>([^<]+)<', html)
    printed = {amount(i)[1] for i in range(1, 13)}
    amounts = [float(x_max) for _, x_max, word in words if word in printed]
    prices = [float(x_max) for _, x_max, word in words if word in {price(i) for i in range(13)}]
    quantities = [float(x_max) for _, x_max, word in words if word in ("2.25", "12.5")]
    assert len(amounts) == len(prices) == len(quantities) == 12
    for column in (quantities, prices, amounts):  # each right-aligned: one right edge
        assert max(column) - min(column) < 0.5
    # Three columns in order, apart from one another.
    assert max(quantities) < min(prices) - 20
    assert max(prices) < min(amounts) - 20


def test_the_same_invoice_renders_to_the_same_bytes(renderer: FpdfInvoiceRenderer) -> None:
    assert renderer.render(document(5)) == renderer.render(document(5))
    later = document(5, as_of=datetime(2026, 3, 6, tzinfo=UTC), paid="2000.00")
    assert renderer.render(later) != renderer.render(document(5))


@pytest.mark.parametrize(
    ("status", "number", "says", "never"),
    [
        ("Draft", "DRAFT", "Draft: not a request for payment", "Please pay"),
        ("Issued", "INV-2026-000042", "Please pay EUR 122,456.78", "not a request"),
        ("Paid", "INV-2026-000042", "Paid in full", "Please pay"),
        ("Void", "INV-2026-000042", "Void: nothing due", "Please pay"),
    ],
)
def test_the_status_decides_what_is_asked_for(
    renderer: FpdfInvoiceRenderer, status: str, number: str, says: str, never: str
) -> None:
    text = flat(content_text(renderer.render(document(3, status=status, number=number))))
    assert says in text
    assert never not in text


def test_a_draft_has_no_issue_date_yet(renderer: FpdfInvoiceRenderer) -> None:
    draft = document(2, status="Draft", number="DRAFT", issue_date=None, due_date=None)
    text = flat(content_text(renderer.render(draft)))
    assert "Not issued yet" in text
    assert "INV-" not in text


def test_without_a_unicode_font_helvetica_prints_transliterated_text(tmp_path: Path) -> None:
    fallback = FpdfInvoiceRenderer(font_dir=tmp_path)  # no fonts there
    assert not fallback.unicode
    pdf = fallback.render(document(30))
    assert b"/BaseFont /Helvetica" in pdf
    text = flat(content_text(pdf))
    assert "Zoë Lukasiewicz" in text
    assert "Ørsted & Simunek Staffing" in text
    assert "Ulica Dluga 5" in text
    assert "Balance due" in text
    assert "?" not in text
    assert len(content_text(pdf)) > 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Zoë Łukasiewicz", "Zoë Lukasiewicz"),
        ("Dvořák \u2013 Őrség \u201cquoted\u201d \u2026", 'Dvorák - Orség "quoted" ...'),
        ("€ 5", "EUR 5"),
        ("东京", "??"),
    ],
)
def test_latin1_transliteration(text: str, expected: str) -> None:
    assert latin1(text) == expected


# -- the use case --------------------------------------------------------------------------

TENANT = UUID("00000000-0000-4000-8000-00000000000a")
OTHER_TENANT = UUID("00000000-0000-4000-8000-00000000000b")
CUSTOMER_ID = UUID("00000000-0000-4000-8000-0000000000c1")


def _raw(value: object) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode(value))


def invoice_doc(
    number: str | None = "INV-2026-000007", status: str = "Issued"
) -> dict[str, object]:
    return {
        "invoiceId": str(INVOICE_ID),
        "customerId": str(CUSTOMER_ID),
        "engagementId": None,
        "milestoneId": None,
        "number": number,
        "status": status,
        "currency": "JPY",
        "lines": [
            {"description": "Audit", "quantity": "3", "unitPrice": "1000.5", "amount": "3002"}
        ],
        "totalAmount": "3002",
        "paidAmount": "0",
        "balance": "3002",
        "issueDate": "2026-03-02" if number else None,
        "dueDate": "2026-03-16" if number else None,
        "createdAt": "2026-03-01T09:00:00.000Z",
        "updatedAt": "2026-03-02T11:00:00.000Z",
    }


class FakeBilling:
    def __init__(self, doc: dict[str, object]) -> None:
        self.doc = doc

    def invoice(self, tenant_id: UUID, invoice_id: UUID) -> Document | None:
        if tenant_id != TENANT or invoice_id != INVOICE_ID:
            return None
        return Document(doc=_raw(self.doc), version=2)

    def invoices(self, tenant_id: UUID, where: InvoiceFilter, *, limit: int, after: int) -> Page:
        raise NotImplementedError

    def payments(self, tenant_id: UUID, invoice_id: UUID | None, *, limit: int, after: int) -> Page:
        raise NotImplementedError

    def payment(self, tenant_id: UUID, payment_id: UUID) -> Document | None:
        raise NotImplementedError


class FakeCustomers:
    def get(self, tenant_id: UUID, customer_id: UUID) -> Document | None:
        if tenant_id != TENANT or customer_id != CUSTOMER_ID:
            return None
        address = {"line1": "1 Chome", "line2": None, "city": "Tokyo", "postalCode": "100-0001"}
        doc = {"name": CUSTOMER, "email": None, "billingAddress": {**address, "country": "JP"}}
        return Document(doc=_raw(doc), version=1)

    def list(self, tenant_id: UUID, where: CustomerFilter, *, limit: int, after: int) -> Page:
        raise NotImplementedError

    def contacts(self, tenant_id: UUID, customer_id: UUID, *, limit: int, after: int) -> Page:
        raise NotImplementedError

    def contact(self, tenant_id: UUID, customer_id: UUID, contact_id: UUID) -> Document | None:
        raise NotImplementedError


class FakeTenants:
    def get(self, tenant_id: UUID) -> TenantRecord | None:
        tenant = {"tenantId": str(tenant_id), "name": "Acme", "contactEmail": "ops@acme.example"}
        return TenantRecord(
            tenant=Document(doc=_raw(tenant), version=1),
            subscription=_raw({}),
            settings=_raw({"currency": "JPY", "paymentTermsDays": 45}),
            provisioned_by="user:admin",
        )

    def list(
        self, *, only_tenant: UUID | None, provisioned_by: str | None, limit: int, after: int
    ) -> Page:
        raise NotImplementedError


class RecordingRenderer:
    def __init__(self) -> None:
        self.documents: list[InvoiceDocument] = []

    def render(self, document: InvoiceDocument) -> bytes:
        self.documents.append(document)
        return b"%PDF-fake"


def context(*, permissions: frozenset[str], tenant: UUID = TENANT) -> Context:
    principal = Principal(subject="t", tenant_id=tenant, roles=(), permissions=permissions)
    return Context(principal=principal, request_id="req-1", tenant_id=tenant)


def downloads(doc: dict[str, object] | None = None) -> tuple[InvoiceDownloads, RecordingRenderer]:
    renderer = RecordingRenderer()
    use_case = InvoiceDownloads(
        renderer,
        BillingQueries(FakeBilling(doc or invoice_doc())),
        CustomerQueries(FakeCustomers()),
        TenantQueries(FakeTenants()),
    )
    return use_case, renderer


def test_the_document_gathers_the_invoice_its_customer_and_its_tenant() -> None:
    use_case, renderer = downloads()
    name, content = use_case.pdf(context(permissions=permissions_for(["finance"])), INVOICE_ID)
    assert (name, content) == ("INV-2026-000007.pdf", b"%PDF-fake")
    [doc] = renderer.documents
    assert (doc.tenant_name, doc.tenant_email) == ("Acme", "ops@acme.example")
    assert (doc.customer_name, doc.customer_email) == (CUSTOMER, None)
    assert doc.billing_address == ["1 Chome", "Tokyo, 100-0001", "Japan"]
    assert (doc.number, doc.status, doc.currency) == ("INV-2026-000007", "Issued", "JPY")
    assert (doc.issue_date, doc.due_date) == (date(2026, 3, 2), date(2026, 3, 16))
    assert doc.lines == [
        InvoiceLine(description="Audit", quantity="3", unit_price="1000.5", amount="3002")
    ]
    assert (doc.total, doc.paid, doc.balance) == ("3002", "0", "3002")
    assert doc.payment_terms_days == 14  # the invoice's own terms, not the tenant's 45
    assert doc.as_of == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)


def test_a_draft_is_named_after_its_id_with_the_tenants_terms() -> None:
    use_case, renderer = downloads(invoice_doc(number=None, status="Draft"))
    name, _ = use_case.pdf(context(permissions=permissions_for(["finance"])), INVOICE_ID)
    assert name == "draft-1b3c5d7e.pdf"
    assert renderer.documents[0].number == "DRAFT"
    assert renderer.documents[0].payment_terms_days == 45
    assert file_name(renderer.documents[0]) == name


def test_invoice_read_alone_is_enough_to_download() -> None:
    # An invoice prints its customer and tenant: reading it includes reading those on it.
    use_case, renderer = downloads()
    use_case.pdf(context(permissions=frozenset({"invoice:read"})), INVOICE_ID)
    assert renderer.documents[0].customer_name == CUSTOMER


def test_without_invoice_read_nothing_is_read_or_rendered() -> None:
    use_case, renderer = downloads()
    ctx = context(permissions=permissions_for(["member"]))  # customer and tenant, not invoices
    with pytest.raises(Forbidden, match="invoice:read"):
        use_case.pdf(ctx, INVOICE_ID)
    assert renderer.documents == []


def test_another_tenants_invoice_and_an_unknown_one_are_not_found() -> None:
    use_case, renderer = downloads()
    finance = permissions_for(["finance"])
    with pytest.raises(NotFound):
        use_case.pdf(context(permissions=finance, tenant=OTHER_TENANT), INVOICE_ID)
    with pytest.raises(NotFound):
        use_case.pdf(context(permissions=finance), UUID(int=7))
    assert renderer.documents == []
