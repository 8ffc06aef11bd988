"""The error-rate report as a PDF: the monthly error rate as a bar chart (black bars, the
value written on each, so it prints in black and white), the counts behind each month,
and the errors by discrepancy code."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table, TableStyle

from medservice.domain.discrepancy import Code
from medservice.reports.mar import period_text
from medservice.reports.pdf import (
    BODY,
    HEADING,
    LIGHT,
    SMALL,
    WIDTH,
    Pdf,
    local_stamp,
    number,
    render,
)
from medservice.reports.texts import t, written_in_facility_language
from medservice.service.error_report import ErrorRateReport


def error_rate_filename(report: ErrorRateReport) -> str:
    first, last = report.months[0][0], report.months[-1][0]
    return f"fejlrate-{report.facility.facility_id}-{first:%Y-%m}-{last:%Y-%m}.pdf"


def percent(value: Decimal) -> str:
    """"94,55 %", "0 %"."""
    return f"{number(value)} %"


def _short(month: date) -> str:
    return f"{period_text(month)[:3]} {month:%y}"


@written_in_facility_language
def error_rate_pdf(report: ErrorRateReport) -> Pdf:
    first, last = report.months[0][0], report.months[-1][0]
    period = period_text(first) if first == last else \
        f"{period_text(first)} - {period_text(last)}"
    header = [
        f"{t('facility')}: {report.facility.display_name}",
        f"{t('period')}: {period}",
        t("times_in", zone=report.facility.time_zone),
        t("as_of", at=local_stamp(report.as_of)),
    ]
    story: list[Flowable] = [Paragraph(t("er_formula"), BODY), Spacer(1, 3 * mm),
                             _chart(report), Spacer(1, 3 * mm),
                             Paragraph(t("er_counts"), HEADING), _counts(report),
                             Paragraph(t("er_by_code"), HEADING), _by_code(report),
                             Spacer(1, 2 * mm), Paragraph(t("er_by_code_note"), SMALL)]
    return render(story, t("er_title"), header)


def _chart(report: ErrorRateReport) -> Drawing:
    values = [float(rate.percent) for _, rate in report.months]
    top = max([*values, 1.0])
    drawing = Drawing(WIDTH, 62 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y = 18 * mm, 10 * mm
    chart.width, chart.height = WIDTH - 24 * mm, 46 * mm
    chart.data = [values]
    chart.categoryAxis.categoryNames = [_short(m) for m, _ in report.months]
    chart.categoryAxis.labels.fontName = "Helvetica"
    chart.categoryAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = top * 1.2
    chart.valueAxis.labels.fontName = "Helvetica"
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.labelTextFormat = lambda v: f"{v:g} %".replace(".", ",")
    chart.bars[0].fillColor = colors.black
    chart.barLabelFormat = lambda v: f"{v:.2f}".replace(".", ",")
    chart.barLabels.fontName = "Helvetica"
    chart.barLabels.fontSize = 7
    chart.barLabels.nudge = 6
    drawing.add(chart)
    drawing.add(String(0, 58 * mm, t("er_axis"), fontName="Helvetica-Bold", fontSize=8))
    return drawing


def _table(data: list[list[str]], first_width: float) -> Table:
    n = len(data[0]) - 1
    width = min(22 * mm, (WIDTH - first_width) / max(n, 1))
    return Table([[Paragraph(f"<b>{c}</b>" if i == 0 or j == 0 else c, SMALL)
                   for j, c in enumerate(row)] for i, row in enumerate(data)],
                 colWidths=[first_width, *([width] * n)], hAlign="LEFT",
                 style=TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.black),
                                   ("BACKGROUND", (0, 0), (-1, 0), LIGHT),
                                   ("ALIGN", (1, 1), (-1, -1), "RIGHT")]))


def _counts(report: ErrorRateReport) -> Table:
    data = [[t("er_month"), *(_short(m) for m, _ in report.months)],
            [t("er_given"), *(str(r.given) for _, r in report.months)],
            [t("er_not_given"), *(str(r.not_given) for _, r in report.months)],
            [t("er_errors"), *(str(r.errors) for _, r in report.months)],
            [t("er_rate"), *(percent(r.percent) for _, r in report.months)]]
    return _table(data, 58 * mm)


def _by_code(report: ErrorRateReport) -> Flowable:
    codes = [c for c in Code if any(r.by_code.get(c) for _, r in report.months)]
    if not codes:
        return Paragraph(t("er_no_errors"), BODY)
    data = [[t("er_code"), *(_short(m) for m, _ in report.months)]]
    data += [[f"{t('code_' + c.value)} ({c.value})",
              *(str(r.by_code.get(c, 0)) for _, r in report.months)] for c in codes]
    return _table(data, 78 * mm)
