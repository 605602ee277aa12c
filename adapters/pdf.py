"""Invoice PDFs with fpdf2 (application.invoice_documents.InvoiceRenderer).

A4, one column: the tenant and "INVOICE" with its number, who is billed and the dates, the lines
(descriptions wrap, numbers are right-aligned, the table's header repeats on every page), the
totals, and a footer with the payment terms and "Page n of N" on every page.

Text is set in DejaVu Sans, a Unicode TTF, so names such as "Zoë Łukasiewicz" print as they are.
fpdf2 ships no font files: DejaVu is looked for where Linux distributions (fonts-dejavu-core,
font-dejavu, dejavu-sans-fonts) and matplotlib put it, or in the `font_dir` given. Without it the
renderer falls back to the PDF core font Helvetica, which holds Latin-1 only: other characters are
transliterated (Ł -> L, ő -> o, € -> EUR), and `unicode` tells which one is in use.

Output is deterministic: the PDF's dates come from the invoice (when it last changed), not from
the clock, so the same invoice state renders to the same bytes with the same fonts.
"""

from __future__ import annotations

import importlib.util
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from fpdf import FPDF, FontFace
from fpdf.enums import Align, TableBordersLayout, TableCellFillMode

from application.invoice_documents import DISPLAY_LOCALE, InvoiceDocument

REGULAR, BOLD = "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"
FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),  # Debian, Ubuntu: fonts-dejavu-core
    Path("/usr/share/fonts/dejavu"),  # Alpine: font-dejavu
    Path("/usr/share/fonts/dejavu-sans-fonts"),  # Fedora, RHEL
    Path("/usr/share/fonts/TTF"),  # Arch: ttf-dejavu
    Path("/usr/local/share/fonts/dejavu"),
)
STATUS_NAMES = {
    "Draft": "Draft",
    "Issued": "Issued",
    "PartiallyPaid": "Partially paid",
    "Paid": "Paid",
    "Void": "Void",
}
# Characters Latin-1 lacks and Unicode does not decompose, for the Helvetica fallback.
_TRANSLITERATIONS = str.maketrans(
    {
        "Ł": "L",
        "ł": "l",
        "Đ": "D",
        "đ": "d",
        "Ħ": "H",
        "ħ": "h",
        "\u0131": "i",  # dotless i
        "Œ": "OE",
        "œ": "oe",
        "Ŋ": "N",
        "ŋ": "n",
        "\u017f": "s",  # long s
        "\u2018": "'",  # single quotation marks
        "\u2019": "'",
        "\u201a": ",",
        "\u201c": '"',  # double quotation marks
        "\u201d": '"',
        "\u201e": '"',
        "\u2010": "-",  # hyphen, en dash, em dash, minus sign
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2026": "...",  # ellipsis
        "\u2022": "*",  # bullet
        "\u20ac": "EUR",
        "\u2122": "TM",
        "\u00a0": " ",  # no-break spaces
        "\u202f": " ",
    }
)

# Layout, in millimetres and points.
MARGIN = 18.0
FOOTER_SPACE = 24.0
INK = (33, 37, 41)
MUTED = (108, 117, 125)
RULE = (206, 212, 218)
SHADE = (241, 243, 245)
STATUS_COLOURS = {
    "Draft": MUTED,
    "Void": (176, 42, 55),
    "Paid": (25, 135, 84),
    "PartiallyPaid": (176, 110, 0),
}


def find_fonts(font_dir: Path | None = None) -> tuple[Path, Path] | None:
    """DejaVu Sans regular and bold, from `font_dir` or the usual places; None if absent."""
    candidates: list[Path] = [font_dir] if font_dir is not None else [*FONT_DIRS]
    if font_dir is None:
        spec = importlib.util.find_spec("matplotlib")  # locates it without importing it
        if spec is not None and spec.origin is not None:
            candidates.append(Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf")
    for directory in candidates:
        regular, bold = directory / REGULAR, directory / BOLD
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


def latin1(text: str) -> str:
    """`text` in Latin-1, the only characters the core PDF fonts hold: accents Latin-1 lacks
    are dropped (ő -> o), a few letters are spelt out (Ł -> L), the rest becomes "?"."""
    out = []
    for char in text.translate(_TRANSLITERATIONS):
        if ord(char) < 256:
            out.append(char)
            continue
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        out.append(base if base and all(ord(c) < 256 for c in base) else "?")
    return "".join(out)


class FpdfInvoiceRenderer:
    """Renders an InvoiceDocument to an A4 PDF."""

    def __init__(self, *, font_dir: Path | None = None, locale: str = DISPLAY_LOCALE) -> None:
        self._fonts = find_fonts(font_dir)
        self._locale = locale

    @property
    def unicode(self) -> bool:
        """Whether a Unicode font is in use (else Helvetica with transliteration)."""
        return self._fonts is not None

    def render(self, document: InvoiceDocument) -> bytes:
        pdf = _InvoicePdf(document, self._fonts, self._locale)
        pdf.compose()
        return bytes(pdf.output())


class _InvoicePdf(FPDF):
    def __init__(
        self, document: InvoiceDocument, fonts: tuple[Path, Path] | None, locale: str
    ) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.doc = document
        self.locale = locale
        if fonts is None:
            self.family = "helvetica"
            self.clean = latin1
        else:
            self.family = "DejaVu"
            self.add_font(self.family, "", str(fonts[0]))
            self.add_font(self.family, "B", str(fonts[1]))
            self.clean = _same
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.c_margin = 0  # text starts where the rules do; the table pads its own cells
        self.set_auto_page_break(auto=True, margin=FOOTER_SPACE)
        self.alias_nb_pages()
        self.set_creation_date(document.as_of)
        self.set_title(self.clean(f"Invoice {document.number}"))
        self.set_author(self.clean(document.tenant_name))
        self.set_subject(self.clean(f"Invoice {document.number} to {document.customer_name}"))
        self.set_creator("workledger")
        self.set_lang("en-GB")

    # -- formatting ---------------------------------------------------------------------------

    def money(self, amount: str) -> str:
        """Grouped digits, at least the currency's minor units, never rounded: 1,234.50, 0.125."""
        return format_currency(
            Decimal(amount),
            self.doc.currency,
            format="#,##0.00",
            locale=self.locale,
            currency_digits=True,
            decimal_quantization=False,
        )

    def quantity(self, quantity: str) -> str:
        return format_decimal(Decimal(quantity), locale=self.locale, decimal_quantization=False)

    def day(self, value: date | None, otherwise: str = "-") -> str:
        return otherwise if value is None else format_date(value, "d MMM yyyy", locale=self.locale)

    def font(self, size: float, bold: bool = False, colour: tuple[int, int, int] = INK) -> None:
        self.set_font(self.family, "B" if bold else "", size)
        self.set_text_color(*colour)

    def fit_cell(self, width: float, height: float, text: str, align: str = "L") -> None:
        """One line of text that never spills out of its cell: a smaller size if need be (down
        to 6 pt), and cut short with an ellipsis beyond that."""
        text = self.clean(text)
        size = self.font_size_pt
        while self.get_string_width(text) > width and self.font_size_pt > 6:
            self.set_font_size(self.font_size_pt - 0.5)
        if self.get_string_width(text) > width:
            ellipsis = self.clean("…")
            while text and self.get_string_width(text + ellipsis) > width:
                text = text[:-1]
            text += ellipsis
        self.cell(width, height, text, align=align)
        self.set_font_size(size)

    def line_out(self, width: float, height: float, text: str, align: str = "L") -> None:
        """One line of text in a cell of `width`, then down to the next line at the same x."""
        x = self.get_x()
        self.fit_cell(width, height, text, align=align)
        self.set_xy(x, self.get_y() + height)

    def rule(self, y: float, colour: tuple[int, int, int] = RULE, width: float = 0.3) -> None:
        self.set_draw_color(*colour)
        self.set_line_width(width)
        self.line(self.l_margin, y, self.w - self.r_margin, y)

    # -- page furniture -----------------------------------------------------------------------

    def header(self) -> None:
        if self.page_no() > 1:
            self.set_xy(self.l_margin, 10)
            self.font(8, colour=MUTED)
            left = f"{self.doc.tenant_name} \u2013 Invoice {self.doc.number} (continued)"
            self.fit_cell(self.epw * 0.6, 5, left)
            self.fit_cell(self.epw * 0.4, 5, self.doc.customer_name, align="R")
            self.rule(16)
            self.set_xy(self.l_margin, 20)

    def footer(self) -> None:
        if self.doc.status in ("Draft", "Void"):
            self._watermark(self.doc.status.upper())
        self.rule(self.h - 19)
        self.set_xy(self.l_margin, self.h - 17)
        self.font(7.5, colour=MUTED)
        self.multi_cell(self.epw - 30, 3.6, self.clean(self._terms()), align="L")
        self.set_xy(self.w - self.r_margin - 30, self.h - 17)
        self.cell(30, 3.6, f"Page {self.page_no()} of {self.str_alias_nb_pages}", align="R")

    def _watermark(self, text: str) -> None:
        """Across the page, over everything and translucent, so it shows through table shading
        and the text under it stays readable (drawn with the footer, once the page is full)."""
        self.font(110, bold=True, colour=STATUS_COLOURS[self.doc.status])
        width = self.get_string_width(text)
        cx, cy = self.w / 2, self.h / 2
        with self.local_context(fill_opacity=0.09), self.rotation(angle=55, x=cx, y=cy):
            self.text(cx - width / 2, cy + 15, text)

    def _terms(self) -> str:
        doc = self.doc
        contact = f" Questions: {doc.tenant_email}." if doc.tenant_email else ""
        if doc.status == "Draft":
            return (
                "Draft: not a request for payment. The invoice is numbered and dated when it is "
                f"issued.{contact}"
            )
        if doc.status == "Void":
            return f"This invoice has been voided: nothing is due.{contact}"
        if doc.status == "Paid":
            return f"Paid in full. Thank you.{contact}"
        terms = (
            f"Payment terms: {doc.payment_terms_days} days. "
            if doc.payment_terms_days is not None
            else ""
        )
        due = f" by {self.day(doc.due_date)}" if doc.due_date else ""
        return (
            f"{terms}Please pay {doc.currency} {self.money(doc.balance)}{due}, quoting "
            f"{doc.number}.{contact}"
        )

    # -- the page -----------------------------------------------------------------------------

    def compose(self) -> None:
        self.add_page()
        self._heading()
        self._parties()
        self._lines()
        self._totals()

    def _heading(self) -> None:
        doc = self.doc
        top = self.t_margin
        right = self.w - self.r_margin
        # Right: INVOICE, the number and (unless simply issued) the status.
        self.set_xy(right - 80, top)
        self.font(22, bold=True)
        self.line_out(80, 10, "INVOICE", align="R")
        self.font(11, bold=True, colour=MUTED if doc.is_draft else INK)
        self.line_out(80, 6, doc.number, align="R")
        if doc.status not in ("Issued", "Draft"):  # a draft's number says it already
            self.font(10, bold=True, colour=STATUS_COLOURS.get(doc.status, INK))
            self.line_out(80, 5.5, STATUS_NAMES.get(doc.status, doc.status).upper(), align="R")
        right_end = self.get_y()
        # Left: the tenant, wrapped beside the title block.
        self.set_xy(self.l_margin, top + 1)
        self.font(15, bold=True)
        self.multi_cell(self.epw - 85, 7, self.clean(doc.tenant_name), align="L")
        if doc.tenant_email:
            self.set_x(self.l_margin)
            self.font(9, colour=MUTED)
            self.multi_cell(self.epw - 85, 5, self.clean(doc.tenant_email), align="L")
        bottom = max(self.get_y(), right_end) + 4
        self.rule(bottom, colour=INK, width=0.5)
        self.set_xy(self.l_margin, bottom + 6)

    def _parties(self) -> None:
        doc = self.doc
        top = self.get_y()
        left_width = self.epw * 0.5
        # Billed to.
        self.font(7.5, bold=True, colour=MUTED)
        self.line_out(left_width, 4.5, "BILLED TO")
        self.font(11, bold=True)
        self.multi_cell(left_width - 4, 5.5, self.clean(doc.customer_name), align="L")
        self.set_x(self.l_margin)
        self.font(9.5)
        for line in [*doc.billing_address, *([doc.customer_email] if doc.customer_email else [])]:
            self.multi_cell(left_width - 4, 4.8, self.clean(line), align="L")
            self.set_x(self.l_margin)
        left_end = self.get_y()
        # The facts, as label / value pairs on the right.
        facts = [
            ("Invoice number", doc.number),
            ("Issue date", self.day(doc.issue_date, "Not issued yet")),
            ("Due date", self.day(doc.due_date)),
            ("Currency", doc.currency),
            ("Status", STATUS_NAMES.get(doc.status, doc.status)),
        ]
        x = self.l_margin + left_width
        width = self.epw - left_width
        self.set_xy(x, top)
        self.font(9)
        label_width = max(self.get_string_width(label) for label, _ in facts) + 3
        for label, value in facts:
            self.font(9, colour=MUTED)
            self.cell(label_width, 5.5, label)
            self.font(9, bold=True)
            self.fit_cell(width - label_width, 5.5, value, align="R")
            self.set_xy(x, self.get_y() + 5.5)
        self.set_xy(self.l_margin, max(left_end, self.get_y()) + 8)

    def _lines(self) -> None:
        doc = self.doc
        currency = doc.currency
        rows = [
            (
                self.clean(line.description),
                self.quantity(line.quantity),
                self.money(line.unit_price),
                self.money(line.amount),
            )
            for line in doc.lines
        ]
        headings = ("Description", "Qty", f"Unit price ({currency})", f"Amount ({currency})")
        widths = self._column_widths(headings, rows)
        self.font(9)
        self.set_draw_color(*RULE)
        self.set_line_width(0.2)
        with self.table(
            width=self.epw,
            col_widths=widths,
            text_align=(Align.L, Align.R, Align.R, Align.R),
            v_align="TOP",
            borders_layout=TableBordersLayout.HORIZONTAL_LINES,
            cell_fill_color=SHADE,
            cell_fill_mode=TableCellFillMode.EVEN_ROWS,
            headings_style=FontFace(emphasis="BOLD", color=INK, fill_color=(222, 226, 230)),
            line_height=4.6,
            padding=(1.6, 2),
            repeat_headings=1,
        ) as table:
            table.row(headings)
            for row in rows:
                table.row(row)

    def _column_widths(
        self, headings: Sequence[str], rows: Iterable[Sequence[str]]
    ) -> tuple[float, ...]:
        """The numeric columns as wide as their widest entry (so numbers never wrap), the
        description everything else, but never less than half the page."""
        self.set_font(self.family, "B", 9)
        widest = [self.get_string_width(text) for text in headings]
        self.set_font(self.family, "", 9)
        for row in rows:
            widest = [
                max(w, self.get_string_width(text)) for w, text in zip(widest, row, strict=True)
            ]
        numbers = [w + 4.5 for w in widest[1:]]  # padding, and a little air
        spare = self.epw - sum(numbers)
        if spare < self.epw / 2:  # absurdly long numbers: let them wrap rather than the text
            numbers = [self.epw / 6] * 3
            spare = self.epw / 2
        return (spare, *numbers)

    def _totals(self) -> None:
        doc = self.doc
        rows = [
            ("Total", f"{doc.currency} {self.money(doc.total)}", False),
            ("Paid", f"{doc.currency} {self.money(doc.paid)}", False),
            # A void invoice keeps its figures, but nothing is due on it.
            ("Balance due", "Void: nothing due", True)
            if doc.status == "Void"
            else ("Balance due", f"{doc.currency} {self.money(doc.balance)}", True),
        ]
        height = 7.0
        needed = 4 + height * len(rows) + 2
        if self.will_page_break(needed):
            self.add_page()
        self.set_y(self.get_y() + 4)
        self.font(11, bold=True)
        value_width = max(self.get_string_width(value) for _, value, _ in rows) + 6
        label_width = 38.0
        x = self.w - self.r_margin - label_width - value_width
        for label, value, strong in rows:
            if strong:
                self.set_draw_color(*INK)
                self.set_line_width(0.4)
                self.line(x, self.get_y() + 0.5, self.w - self.r_margin, self.get_y() + 0.5)
                self.set_y(self.get_y() + 1.5)
                self.set_fill_color(*SHADE)
            self.set_x(x)
            self.font(11 if strong else 9.5, bold=strong, colour=INK if strong else MUTED)
            self.c_margin = 2
            self.cell(label_width, height, label, fill=strong)
            self.font(11 if strong else 9.5, bold=strong)
            self.cell(value_width, height, value, align="R", fill=strong)
            self.c_margin = 0
            self.set_y(self.get_y() + height)


def _same(text: str) -> str:
    return text
