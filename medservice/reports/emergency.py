"""The emergency list (nødliste) as a PDF: for an IT outage, what to give in one shift and
room to sign it. Residents in room order; per resident the doses with their giving time,
drug and strength, quantity, route, pouch or poured and what was already documented when
it was printed, then the PN allowances with the last PN given, then the notes (paused,
discontinued, needs a manual schedule). Doses given on paper are entered afterwards with
their real times: late documentation is flagged, nothing else is lost."""

from __future__ import annotations

from datetime import datetime, timedelta

from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Paragraph, Spacer, Table, TableStyle

from medservice.domain.facility import PnDayMode
from medservice.domain.orders import DispensingMode, Drug
from medservice.domain.pn import DAY
from medservice.domain.rounds import DoseState, DoseStatus, PnLine, ResidentRound
from medservice.domain.vocabulary import route_text
from medservice.reports.mar import reason_code
from medservice.reports.pdf import (
    BODY,
    HEADING,
    LIGHT,
    SMALL,
    Pdf,
    esc,
    local_stamp,
    number,
    quantity,
    render,
    signatures,
)
from medservice.reports.texts import shown, t, written_in_facility_language
from medservice.service.rounds import EmergencyList

WIDTHS = (16 * mm, 62 * mm, 26 * mm, 22 * mm, 20 * mm, 55 * mm, 18 * mm, 58 * mm)


def emergency_filename(lst: EmergencyList) -> str:
    s = lst.schedule
    return f"noedliste-{s.facility_id}-{s.shift_date.isoformat()}-{s.shift_id}.pdf"


@written_in_facility_language
def emergency_pdf(lst: EmergencyList) -> Pdf:
    s, facility = lst.schedule, lst.facility
    shift = facility.shift(s.shift_id)
    name = shift.display_name if shift is not None and shift.display_name else s.shift_id
    local = facility.zone
    span = f"{s.start.astimezone(local):%H:%M}-{s.end.astimezone(local):%H:%M}"
    signs = signatures(st.record.performer for r in s.residents for st in r.states.values()
                       if st.record is not None)
    header = [
        f"{t('facility')}: {facility.display_name}",
        f"{t('el_shift')}: {name} {span}",
        f"{t('el_date')}: {s.shift_date.isoformat()}",
        t("times_in", zone=facility.time_zone),
        t("as_of", at=local_stamp(lst.as_of)),
    ]
    story: list[Flowable] = [Paragraph(t("el_instruction"), BODY), Spacer(1, 2 * mm)]
    for entry in s.residents:
        story.append(KeepTogether(_resident(entry, lst, signs)))
    story.append(Spacer(1, 3 * mm))
    listed = "; ".join(f"{esc(m)} = {esc(p)}" for p, m in sorted(signs.items(),
                                                              key=lambda kv: kv[1]))
    story.append(Paragraph(f"<b>{t('signatures')}:</b> {listed or t('none')}", SMALL))
    return render(story, t("el_title"), header)


def _status(state: DoseState, lst: EmergencyList, signs: dict[str, str]) -> str:
    record = state.record
    at = "" if record is None else \
        record.administered_at.astimezone(lst.facility.zone).strftime("%H:%M")
    if state.status is DoseStatus.GIVEN and record is not None:
        return t("el_given", at=at, who=signs[record.performer])
    if state.status is DoseStatus.NOT_GIVEN and record is not None:
        words = reason_code(record.not_given_reason)[1]
        return t("el_not_given", at=at, why=words)
    if state.status is DoseStatus.MISSED:
        return t("mar_missed_short")
    if state.status is DoseStatus.NOT_DOCUMENTED:
        return t("el_not_documented")
    return ""


def _drug(drug: Drug) -> str:
    return f"<b>{esc(drug.name)}</b> {esc(drug.strength)}"  # as drug_text, the name in bold


def _resident(entry: ResidentRound, lst: EmergencyList, signs: dict[str, str]
              ) -> list[Flowable]:
    r = entry.resident
    title = f"{t('room')} {esc(r.room or '-')} · {esc(r.display_name)} ({esc(r.resident_id)})"
    out: list[Flowable] = [Paragraph(title, HEADING)]
    head = [t("time"), t("drug"), t("quantity"), t("route"), t("el_source"),
            t("el_status"), t("el_given_at"), t("signature")]
    data: list[list[object]] = [[Paragraph(f"<b>{h}</b>", SMALL) for h in head]]
    style: list[tuple[object, ...]] = [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.black), ("BACKGROUND", (0, 0), (-1, 0), LIGHT),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 1), (-1, -1), 4), ("BOTTOMPADDING", (0, 1), (-1, -1), 4)]
    for dose, content in entry.doses:
        source = t("pouch") if content.dispensing_mode is DispensingMode.DOSE_DISPENSED \
            else t("poured")
        critical = f"<br/><b>{t('time_critical')}</b>" if dose.time_critical else ""
        extra = f"<br/>{esc(dose.supplementary_text)}" if dose.supplementary_text else ""
        data.append([Paragraph(f"<b>{dose.local_time:%H:%M}</b>", SMALL),
                     Paragraph(_drug(content.drug) + critical + extra, SMALL),
                     Paragraph(esc(quantity(dose.amount, dose.unit)), SMALL),
                     Paragraph(esc(shown(route_text(content.route))), SMALL),
                     Paragraph(source, SMALL),
                     Paragraph(esc(_status(entry.state_of(dose.dose_id), lst, signs)), SMALL),
                     "", ""])
    for line in entry.pn:
        data.append([Paragraph(f"<b>{t('mar_kind_pn')}</b>", SMALL),
                     Paragraph(_drug(line.drug), SMALL),
                     Paragraph(esc(_pn_amount(line)), SMALL),
                     Paragraph(esc(shown(route_text(line.content.route))), SMALL),
                     Paragraph(t("poured") if line.content.dispensing_mode is
                               DispensingMode.STAFF_POURED else t("pouch"), SMALL),
                     Paragraph(esc(_pn_use(line, lst)), SMALL), "", ""])
    for note in entry.notes:
        row = len(data)
        data.append([Paragraph(f"<b>{t('el_note')}</b>", SMALL),
                     Paragraph(f"{_drug(note.drug)}: <b>{t('note_' + note.kind.value)}</b> "
                               f"({esc(shown(note.text))})", SMALL), "", "", "", "", "", ""])
        style.append(("SPAN", (1, row), (-1, row)))
    if len(data) == 1:
        data.append(["", Paragraph(t("el_nothing"), SMALL), "", "", "", "", "", ""])
        style.append(("SPAN", (1, 1), (-1, 1)))
    out.append(Table(data, colWidths=WIDTHS, repeatRows=1, hAlign="LEFT",
                     style=TableStyle(style)))
    return out


def _pn_amount(line: PnLine) -> str:
    amount = line.terms.amount
    return "" if amount is None else quantity(amount, line.unit)


def period_text(period: timedelta, mode: PnDayMode) -> str:
    """What a PN count limit counts over, in Danish."""
    if period == DAY:
        return t("per_calendar_day") if mode is PnDayMode.CALENDAR_DAY else t("per_24_hours")
    hours = int(period.total_seconds() // 3600)
    return t("per_hours", n=number(hours)) if hours else t("per_24_hours")


def _pn_use(line: PnLine, lst: EmergencyList) -> str:
    terms = line.terms
    if terms.max_count is None:
        text = t("el_pn_unlimited", given=line.given)
    else:
        text = t("el_pn_limit", max=terms.max_count,
                 per=period_text(terms.count_period, lst.facility.pn_day_mode),
                 given=line.given, left=line.doses_left if line.doses_left is not None else "")
    if line.last_given is not None:
        last: datetime = line.last_given.astimezone(lst.facility.zone)
        text += "; " + t("el_pn_last", at=last.strftime("%Y-%m-%d %H:%M"))
    return text
