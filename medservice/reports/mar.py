"""The administration chart (medicinskema) as a PDF: a row per order, time and quantity, a
column per day of the month, a mark per dose (see the legend), then the PN and unplanned
administrations with their times, the legend and the signatures."""

from __future__ import annotations

from datetime import date

from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Paragraph, Spacer, Table, TableStyle

from medservice.domain.administration import NotGivenReason
from medservice.domain.orders import Drug
from medservice.domain.vocabulary import route_text
from medservice.reports.pdf import (
    BODY,
    CELL,
    GREY,
    HEADING,
    LIGHT,
    SMALL,
    WIDTH,
    Pdf,
    esc,
    local_stamp,
    quantity,
    render,
    signatures,
)
from medservice.reports.texts import (
    month_name,
    shown,
    t,
    weekday_letter,
    written_in_facility_language,
)
from medservice.service.charts import (
    AdministrationChart,
    ChartCell,
    ChartEntry,
    ChartNote,
    ChartRow,
    Mark,
    NoteKind,
)

MISSED = "X"
NOT_DOCUMENTED = "ID"
ENTERED_IN_ERROR = "FR"
NOT_GIVEN_PREFIX = "÷"
LABEL_WIDTHS = (52 * mm, 11 * mm, 17 * mm)
PN_TIMES = ParagraphStyle("pn", parent=CELL, fontSize=4.8, leading=5.6)


def reason_code(reason: NotGivenReason | None) -> tuple[str, str]:
    """The letter on the chart and the words in the legend for a not-given reason."""
    code, words = t(f"ng_{(reason or NotGivenReason.OTHER).value}").split("|")
    return code, words


def period_text(month: date) -> str:
    return f"{month_name(month.month)} {month.year}"


def chart_filename(chart: AdministrationChart) -> str:
    return f"medicinskema-{chart.resident.resident_id}-{chart.month:%Y-%m}.pdf"


@written_in_facility_language
def chart_pdf(chart: AdministrationChart) -> Pdf:
    performers = [c.record.performer for row in chart.rows for cells in row.cells.values()
                  for c in cells if c.record is not None]
    performers += [e.record.performer for e in chart.entries]
    signs = signatures(performers)
    resident = chart.resident
    header = [
        f"{t('resident')}: {resident.display_name} ({resident.resident_id})",
        f"{t('room')}: {resident.room or '-'}",
        f"{t('facility')}: {chart.facility.display_name}",
        f"{t('period')}: {period_text(chart.month)}",
        t("times_in", zone=chart.facility.time_zone),
        t("as_of", at=local_stamp(chart.as_of)),
    ]
    story: list[Flowable] = [_grid(chart, signs) if chart.rows or _pn_rows(chart) else
                             Paragraph(t("mar_no_rows"), BODY)]
    story += [Spacer(1, 3 * mm), *_notes(chart), *_entries(chart, signs), Spacer(1, 3 * mm),
              KeepTogether([_legend(), Spacer(1, 2 * mm), _signature_list(signs)])]
    return render(story, t("mar_title"), header)


def _cell_text(cell: ChartCell, signs: dict[str, str]) -> str:
    record = cell.record
    if cell.mark is Mark.GIVEN and record is not None:
        return esc(signs[record.performer])
    if cell.mark is Mark.NOT_GIVEN and record is not None:
        return NOT_GIVEN_PREFIX + reason_code(record.not_given_reason)[0]
    if cell.mark is Mark.MISSED:
        return f"<b>{MISSED}</b>"
    if cell.mark is Mark.NOT_DOCUMENTED:
        return NOT_DOCUMENTED
    if cell.mark is Mark.ENTERED_IN_ERROR and record is not None:
        return f"<strike>{ENTERED_IN_ERROR}</strike>"
    return ""


def _row_label(row: ChartRow) -> Paragraph:
    drug = row.drug
    mode = t("pouch") if row.mode.value == "dose_dispensed" else t("poured")
    extra = f", <b>{t('time_critical')}</b>" if row.time_critical else ""
    route = esc(shown(route_text(row.route)))
    return Paragraph(f"<b>{esc(drug.name)}</b> {esc(drug.strength)}<br/>"
                     f"<font size=6>{route} · {mode}{extra}</font>", SMALL)


def _grid(chart: AdministrationChart, signs: dict[str, str]) -> Table:
    days = chart.days
    day_width = (WIDTH - sum(LABEL_WIDTHS)) / len(days)
    head = [Paragraph(f"<b>{t('drug')}</b>", SMALL), Paragraph(f"<b>{t('time')}</b>", SMALL),
            Paragraph(f"<b>{t('quantity')}</b>", SMALL)]
    head += [Paragraph(f"<b>{d.day}</b><br/>{weekday_letter(d.weekday())}", CELL) for d in days]
    data: list[list[object]] = [head]
    style = [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (3, 0), (-1, -1), 0.5), ("RIGHTPADDING", (3, 0), (-1, -1), 0.5),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("BACKGROUND", (0, 0), (-1, 0), LIGHT),
    ]
    for i, d in enumerate(days):  # a heavier line after each Sunday: weeks read at a glance
        if d.weekday() == 6 and i < len(days) - 1:
            style.append(("LINEAFTER", (3 + i, 0), (3 + i, -1), 1.2, colors.black))
    for r, row in enumerate(chart.rows, start=1):
        line: list[object] = [_row_label(row), Paragraph(row.time.strftime("%H:%M"), SMALL),
                              Paragraph(quantity(row.amount, row.unit), SMALL)]
        for c, d in enumerate(days, start=3):
            cells = row.cells.get(d)
            if cells is None:
                line.append("")
                style.append(("BACKGROUND", (c, r), (c, r), GREY))
                continue
            line.append(Paragraph("<br/>".join(_cell_text(x, signs) for x in cells), CELL))
        data.append(line)
    for drug, given in _pn_rows(chart).values():
        line = [Paragraph(f"<b>{esc(drug.name)}</b> {esc(drug.strength)}<br/>"
                          f"<font size=6>{t('mar_kind_pn')}</font>", SMALL),
                Paragraph(t("mar_kind_pn"), SMALL), ""]
        for d in days:
            times = [e.local.strftime("%H:%M") for e in given if e.local.date() == d]
            line.append(Paragraph("<br/>".join(times), PN_TIMES) if times else "")
        data.append(line)
    return Table(data, colWidths=[*LABEL_WIDTHS, *([day_width] * len(days))], repeatRows=1,
                 style=TableStyle(style))


def _pn_rows(chart: AdministrationChart) -> dict[str, tuple[Drug, list[ChartEntry]]]:
    """The PN doses given in the month, by order: a grid row each, with their times."""
    rows: dict[str, tuple[Drug, list[ChartEntry]]] = {}
    for e in chart.entries:
        if e.as_needed and not e.record.entered_in_error:
            rows.setdefault(e.record.order_id or e.drug.drug_id, (e.drug, []))[1].append(e)
    return rows


def note_text(note: ChartNote) -> str:
    """A pause, discontinuation or treatment end in words, local time with its zone."""
    if note.kind is NoteKind.PAUSED:
        if note.end is None:
            return t("mar_note_paused_open", start=local_stamp(note.start))
        return t("mar_note_paused", start=local_stamp(note.start), end=local_stamp(note.end))
    if note.kind is NoteKind.DISCONTINUED:
        return t("mar_note_discontinued", at=local_stamp(note.start))
    return t("mar_note_ended", day=note.start.strftime("%Y-%m-%d"))


def _notes(chart: AdministrationChart) -> list[Flowable]:
    """Why a row has grey days: the month's pauses, discontinuations and treatment ends."""
    if not chart.notes:
        return []
    data = [[Paragraph(f"<b>{esc(f'{n.drug.name} {n.drug.strength}'.strip())}</b>", SMALL),
             Paragraph(esc(note_text(n)), SMALL)] for n in chart.notes]
    return [Paragraph(t("mar_notes"), HEADING),
            Table(data, colWidths=[70 * mm, 190 * mm], hAlign="LEFT", style=TableStyle([
                ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "TOP")])),
            Spacer(1, 3 * mm)]


def _entries(chart: AdministrationChart, signs: dict[str, str]) -> list[Flowable]:
    out: list[Flowable] = [Paragraph(t("mar_extra"), HEADING)]
    if not chart.entries:
        return [*out, Paragraph(t("mar_no_extra"), BODY)]
    data: list[list[object]] = [[Paragraph(f"<b>{h}</b>", SMALL) for h in (
        "Dato", t("time"), t("drug"), t("quantity"), t("mar_kind"), t("mar_reason"),
        t("signature"))]]
    style = [("GRID", (0, 0), (-1, -1), 0.4, colors.black),
             ("BACKGROUND", (0, 0), (-1, 0), LIGHT), ("VALIGN", (0, 0), (-1, -1), "TOP")]
    for e in chart.entries:
        r = e.record
        note = r.pn_reason or r.reason_text
        if r.entered_in_error:
            note = t("mar_struck", reason=r.correction_reason) + (f"; {note}" if note else "")
        amount = "" if r.quantity is None else str(r.quantity).replace(".", ",")
        kind = t("mar_kind_pn") if e.as_needed else (
            t("mar_kind_scheduled") if r.dose_id else t("mar_kind_unplanned"))
        cells = [e.local.strftime("%Y-%m-%d"), e.local.strftime("%H:%M"),
                 esc(f"{e.drug.name} {e.drug.strength}".strip()), amount, kind, esc(note),
                 esc(signs[r.performer])]
        if r.entered_in_error:
            cells = [f"<strike>{c}</strike>" if i != 5 else c for i, c in enumerate(cells)]
        data.append([Paragraph(c, SMALL) for c in cells])
    widths = [22 * mm, 12 * mm, 60 * mm, 18 * mm, 22 * mm, 110 * mm, 16 * mm]
    out.append(Table(data, colWidths=widths, repeatRows=1, style=TableStyle(style),
                     hAlign="LEFT"))
    return out


def _legend() -> Table:
    codes = [reason_code(r) for r in NotGivenReason]
    rows = [
        ["AH", t("mar_given")],
        [", ".join(NOT_GIVEN_PREFIX + c for c, _ in codes),
         t("mar_not_given") + " " + "; ".join(f"{NOT_GIVEN_PREFIX}{c} {w}" for c, w in codes)],
        [MISSED, t("mar_missed")],
        [NOT_DOCUMENTED, t("mar_not_documented")],
        [f"<strike>{ENTERED_IN_ERROR}</strike>", t("mar_entered_in_error")],
        ["", t("mar_due")],
        ["", t("mar_not_scheduled")],
    ]
    data = [[Paragraph(f"<b>{t('mar_legend')}</b>", SMALL), ""]]
    data += [[Paragraph(a, SMALL), Paragraph(b, SMALL)] for a, b in rows]
    return Table(data, colWidths=[28 * mm, 150 * mm], hAlign="LEFT", style=TableStyle([
        ("GRID", (0, 1), (0, -1), 0.4, colors.black),
        ("BACKGROUND", (0, len(data) - 1), (0, len(data) - 1), GREY),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]))


def _signature_list(signs: dict[str, str]) -> Paragraph:
    listed = "; ".join(f"{esc(mark)} = {esc(subject)}" for subject, mark in
                       sorted(signs.items(), key=lambda kv: kv[1])) or t("none")
    return Paragraph(f"<b>{t('signatures')}:</b> {listed}", SMALL)
