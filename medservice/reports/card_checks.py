"""The inspection checks of a facility's medicine cards as a PDF (issue 16 part 3): a
summary by checkpoint, then every finding per resident in room order, with its checkpoint,
drug, problem and what to do. The findings are `service.card_checks.card_checks`'s."""

from __future__ import annotations

from collections import Counter

from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table, TableStyle

from medservice.domain.card_checks import CHECKPOINT_TITLES, Checkpoint
from medservice.reports.pdf import BODY, HEADING, LIGHT, SMALL, WIDTH, Pdf, esc, local_stamp, render
from medservice.reports.texts import t
from medservice.service.card_checks import CardChecks


def card_checks_filename(checks: CardChecks) -> str:
    return f"tilsynstjek-{checks.facility.facility_id}-{checks.as_of:%Y-%m-%d}.pdf"


def card_checks_pdf(checks: CardChecks) -> Pdf:
    header = [
        f"{t('facility')}: {checks.facility.display_name}",
        t("times_in", zone=checks.facility.time_zone),
        t("as_of", at=local_stamp(checks.as_of)),
    ]
    story: list[Flowable] = [
        Paragraph(t("cc_intro"), BODY), Spacer(1, 2 * mm),
        Paragraph(t("cc_residents", checked=checks.residents_checked,
                    findings=len(checks.findings)), BODY), Spacer(1, 3 * mm)]
    if not checks.findings:
        story.append(Paragraph(t("cc_none"), BODY))
    else:
        story += [Paragraph(t("cc_summary"), HEADING), _summary(checks), Spacer(1, 3 * mm),
                  Paragraph(t("cc_findings"), HEADING), _findings(checks)]
    return render(story, t("cc_title"), header)


def _grid(data: list[list[Flowable]], widths: list[float]) -> Table:
    return Table(data, colWidths=widths, hAlign="LEFT", repeatRows=1,
                 style=TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.black),
                                   ("BACKGROUND", (0, 0), (-1, 0), LIGHT),
                                   ("VALIGN", (0, 0), (-1, -1), "TOP")]))


def _cells(row: list[str], bold: bool = False) -> list[Flowable]:
    return [Paragraph(f"<b>{esc(c)}</b>" if bold else esc(c), SMALL) for c in row]


def _summary(checks: CardChecks) -> Table:
    counts = Counter(rf.finding.checkpoint for rf in checks.findings)
    data = [_cells([t("cc_checkpoint"), t("cc_count")], bold=True)]
    data += [_cells([CHECKPOINT_TITLES[c], str(counts[c])]) for c in Checkpoint if counts[c]]
    return _grid(data, [110 * mm, 20 * mm])


def _findings(checks: CardChecks) -> Table:
    data = [_cells([t("resident"), t("room"), t("drug"), t("cc_checkpoint"), t("cc_problem"),
                    t("cc_action")], bold=True)]
    for rf in checks.findings:
        f, d = rf.finding, rf.finding.drug
        drug = " ".join(p for p in (d.name, d.strength) if p)
        data.append(_cells([rf.resident.display_name, rf.resident.room, drug, f.title,
                            f.problem, f.action]))
    fixed = [38 * mm, 16 * mm, 38 * mm, 45 * mm]
    rest = (WIDTH - sum(fixed)) / 2
    return _grid(data, [*fixed, rest, rest])
