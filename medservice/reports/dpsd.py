"""The DPSD collective report as CSV (the counts to enter in DPSD, one row per category,
as a Danish spreadsheet opens it: UTF-8 with BOM, semicolons) and as PDF (the counts, the
confirmed errors outside the categories, and the high-severity list for individual
reporting)."""

from __future__ import annotations

import csv
import io

from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, LongTable, Paragraph, Spacer, Table, TableStyle

from medservice.reconcile.dpsd import Category, counts_rows
from medservice.reports.mar import period_text
from medservice.reports.pdf import (
    BODY,
    HEADING,
    LIGHT,
    SMALL,
    WIDTH,
    Pdf,
    esc,
    local_stamp,
    render,
)
from medservice.reports.texts import t
from medservice.service.dpsd_report import DpsdReport, Individual


def dpsd_filename(report: DpsdReport, extension: str) -> str:
    return f"dpsd-{report.facility.facility_id}-{report.month:%Y-%m}.{extension}"


def category_text(c: Category) -> str:
    return t(f"dp_cat_{c.value}")


def area_text(c: Category) -> str:
    return t(f"dp_area_{c.area.value}")


def dpsd_csv(report: DpsdReport) -> bytes:
    """One row per category (zeros included) and a total; the code column is the
    category's stable name, for machines."""
    out = io.StringIO()
    w = csv.writer(out, delimiter=";", lineterminator="\r\n")
    w.writerow(t("dp_csv_header").split(";"))
    head = [report.facility.display_name, f"{report.month:%Y-%m}"]
    for c, confirmed, awaiting in counts_rows(report.counts):
        w.writerow([*head, area_text(c), category_text(c), c.name, confirmed, awaiting])
    w.writerow([*head, t("dp_total"), "", "", report.counts.confirmed_total,
                report.counts.awaiting_total])
    return out.getvalue().encode("utf-8-sig")


def dpsd_pdf(report: DpsdReport) -> Pdf:
    header = [
        f"{t('facility')}: {report.facility.display_name}",
        f"{t('period')}: {period_text(report.month)}",
        t("times_in", zone=report.facility.time_zone),
        t("as_of", at=local_stamp(report.as_of)),
    ]
    story: list[Flowable] = [
        Paragraph(t("dp_intro"), BODY), Paragraph(t("dp_counts"), HEADING), _counts(report),
        Spacer(1, 2 * mm),
        Paragraph(esc(t("dp_outside", n=report.counts.confirmed_outside)), BODY),
        Paragraph(t("dp_individual"), HEADING), Paragraph(t("dp_individual_note"), SMALL),
        Spacer(1, 2 * mm), _individual(report)]
    return render(story, t("dp_title"), header)


def _grid(data: list[list[str]], widths: list[float], numbers_from: int | None = None
          ) -> Table:
    """A table with a grey head row repeated on every page; numbers right-aligned."""
    style = [("GRID", (0, 0), (-1, -1), 0.4, colors.black),
             ("BACKGROUND", (0, 0), (-1, 0), LIGHT), ("VALIGN", (0, 0), (-1, -1), "TOP")]
    if numbers_from is not None:
        style.append(("ALIGN", (numbers_from, 1), (-1, -1), "RIGHT"))
    return Table([[Paragraph(f"<b>{c}</b>" if i == 0 else c, SMALL) for c in row]
                  for i, row in enumerate(data)],
                 colWidths=widths, hAlign="LEFT", repeatRows=1, style=TableStyle(style))


def _counts(report: DpsdReport) -> Table:
    data = [[t("dp_area"), t("dp_category"), t("dp_confirmed"), t("dp_awaiting")]]
    data += [[area_text(c), esc(category_text(c)), str(n), str(waiting)]
             for c, n, waiting in counts_rows(report.counts)]
    data.append([f"<b>{t('dp_total')}</b>", "", f"<b>{report.counts.confirmed_total}</b>",
                 f"<b>{report.counts.awaiting_total}</b>"])
    return _grid(data, [32 * mm, 80 * mm, 28 * mm, 32 * mm], numbers_from=2)


def _resident(i: Individual) -> str:
    d = i.entry.discrepancy
    return f"{i.resident.display_name} ({d.resident_id})" if i.resident else d.resident_id


def _individual(report: DpsdReport) -> Flowable:
    """One row per listed error. Cells are plain strings where they fit their column (a
    month can list thousands, and a Paragraph per cell makes a thousand rows take seconds
    to lay out); longer names, drugs and notes wrap."""
    if not report.individual:
        return Paragraph(t("dp_none"), BODY)
    zone = report.facility.zone

    fixed = [30 * mm, 45 * mm, 36 * mm, 52 * mm, 40 * mm]
    widths = [*fixed, WIDTH - sum(fixed)]

    def wrapped(text: str, column: int) -> Paragraph | str:
        """Plain when it fits on one line (the cell's padding is 6 points)."""
        fits = stringWidth(text, SMALL.fontName, SMALL.fontSize) <= widths[column] - 6
        return text if fits else Paragraph(esc(text), SMALL)

    head = [Paragraph(f"<b>{c}</b>", SMALL) for c in (
        t("dp_when"), t("resident"), t("dp_event"), t("dp_category"), t("drug"),
        t("dp_note"))]
    rows: list[list[Paragraph | str]] = [head]
    for i in report.individual:
        d = i.entry.discrepancy
        rows.append([local_stamp(d.occurred_at.astimezone(zone)), wrapped(_resident(i), 1),
                     t(f"code_{d.code.value}"),
                     category_text(i.category) if i.category else "-",
                     wrapped(i.drug, 4), wrapped(i.entry.review_note, 5)])
    return LongTable(rows, colWidths=widths, hAlign="LEFT", repeatRows=1,
                 style=TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.black),
                                   ("BACKGROUND", (0, 0), (-1, 0), LIGHT),
                                   ("VALIGN", (0, 0), (-1, -1), "TOP"),
                                   ("FONT", (0, 1), (-1, -1), SMALL.fontName,
                                    SMALL.fontSize, SMALL.leading)]))
