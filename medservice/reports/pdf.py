"""What every printed document shares: landscape A4, a header naming what it is about on
every page, "Side x af y" at the foot, and words and numbers as Danish staff read them.
Black on white with grey fills only, so a black-and-white printer loses nothing."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple
from xml.sax.saxutils import escape as xml_escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageTemplate

from medservice.domain.dosage import Amount, DoseUnit
from medservice.domain.vocabulary import unit_words
from medservice.reports.texts import shown, t

PAGE = landscape(A4)
MARGIN = 10 * mm
HEADER_HEIGHT = 18 * mm
FOOTER_HEIGHT = 8 * mm
WIDTH = PAGE[0] - 2 * MARGIN
GREY = colors.Color(0.85, 0.85, 0.85)
LIGHT = colors.Color(0.93, 0.93, 0.93)

BODY = ParagraphStyle("body", fontName="Helvetica", fontSize=8, leading=10)
SMALL = ParagraphStyle("small", fontName="Helvetica", fontSize=7, leading=8.5)
CELL = ParagraphStyle("cell", fontName="Helvetica", fontSize=6, leading=7, alignment=1)
HEADING = ParagraphStyle("heading", fontName="Helvetica-Bold", fontSize=10, leading=13,
                         spaceBefore=6, spaceAfter=3)


def esc(text: str) -> str:
    """Data (drug names, notes) inside a Paragraph: its markup characters escaped."""
    return xml_escape(text)


def number(value: Decimal | int) -> str:
    """A quantity as staff write it in the document's language: 0,5 in Danish."""
    return shown(Decimal(value))


def quantity(amount: Amount, unit: DoseUnit) -> str:
    """"1 tablet", "2 tabletter", "1-2 tabletter" ("2 tablets" in English): the unit's
    one name (domain/vocabulary.py) in its singular or plural."""
    words = shown(unit_words(unit.singular, unit.plural, amount.quantity or amount.high))
    if amount.quantity is not None:
        return f"{number(amount.quantity)} {words}".strip()
    return f"{number(amount.low)}-{number(amount.high)} {words}".strip()


def local_stamp(at: datetime) -> str:
    """"2026-03-05 10:12 CET": a facility-local time with its zone, never UTC beside it."""
    return at.strftime("%Y-%m-%d %H:%M %Z")


def initials(subject: str) -> str:
    """A performer's initials from the token subject: "anne.hansen@x.dk" -> "AH",
    "test-carer" -> "TC", "karen" -> "KA"."""
    words = [w for w in re.split(r"[^0-9A-Za-zÆØÅæøå]+", subject.split("@")[0]) if w]
    if not words:
        return "?"
    if len(words) == 1:
        return words[0][:2].upper()
    return "".join(w[0] for w in words[:3]).upper()


def signatures(subjects: Iterable[str]) -> dict[str, str]:
    """Subject -> initials, unique on the document (a second "AH" becomes "AH2"); the
    document lists them, so a mark always names one person."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for subject in sorted(set(subjects)):
        base = initials(subject)
        mark, n = base, 1
        while mark in taken:
            n += 1
            mark = f"{base}{n}"
        taken.add(mark)
        out[subject] = mark
    return out


class Pdf(NamedTuple):
    content: bytes
    pages: int


class _NumberedCanvas(canvas.Canvas):
    """Holds the pages back until the end, so each can say "Side x af y"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        self.page_count = total
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont("Helvetica", 8)
            self.drawRightString(PAGE[0] - MARGIN, MARGIN / 2 + 2,
                                 t("page", page=self._pageNumber, pages=total))
            super().showPage()
        super().save()


def render(story: Sequence[Flowable], title: str, header: Sequence[str]) -> Pdf:
    """The document as PDF bytes: `title` in bold and the `header` lines (who, where,
    when) at the top of every page."""

    def on_page(c: canvas.Canvas, _doc: Any) -> None:
        c.saveState()
        top = PAGE[1] - MARGIN
        c.setFont("Helvetica-Bold", 12)
        c.drawString(MARGIN, top - 10, title)
        c.setFont("Helvetica", 8)
        half = (len(header) + 1) // 2
        for i, line in enumerate(header):
            x = MARGIN if i < half else MARGIN + WIDTH / 2
            c.drawString(x, top - 22 - 9 * (i % half), line)
        c.setLineWidth(0.5)
        c.line(MARGIN, top - HEADER_HEIGHT, PAGE[0] - MARGIN, top - HEADER_HEIGHT)
        c.drawString(MARGIN, MARGIN / 2 + 2, f"{title} · {header[0] if header else ''}")
        c.restoreState()

    out = io.BytesIO()
    doc = BaseDocTemplate(out, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN,
                          topMargin=MARGIN + HEADER_HEIGHT + 2 * mm,
                          bottomMargin=MARGIN + FOOTER_HEIGHT, title=title,
                          author="medservice")
    frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body",
                  leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=on_page)])
    made: list[_NumberedCanvas] = []

    def maker(*args: Any, **kwargs: Any) -> _NumberedCanvas:
        made.append(_NumberedCanvas(*args, **kwargs))
        return made[-1]

    doc.build(list(story), canvasmaker=maker)
    return Pdf(out.getvalue(), made[-1].page_count)
