"""The error-rate report of a seeded month on SQLite and PostgreSQL, read back from the
PDF: the demo home of tests/unit/test_charts.py, r01 reconciled over the month up to the
15th at 14:00 (its missed doses found), and the month before (nothing yet)."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader

from medservice.domain.discrepancy import Code
from medservice.domain.errors import InvalidArgument
from medservice.reports.error_rate import error_rate_filename, error_rate_pdf
from medservice.reports.texts import MONTHS
from medservice.service import error_report, reconciliation
from medservice.service.charts import next_month
from medservice.service.unit_of_work import UnitOfWorkFactory
from tests.unit.test_charts import MONTH, NOW, F, R, local, seed_month

BEFORE = (MONTH - timedelta(days=1)).replace(day=1)


def test_the_report_holds_each_months_rate_and_its_counts_by_code(
        uow: UnitOfWorkFactory) -> None:
    db = uow
    seed_month(db)
    with db() as u:
        reconciliation.reconcile_resident(u, F, R, local(1, 0), NOW, NOW)
        u.commit()
    with db(write=False) as u:
        report = error_report.monthly_error_rates(u, F, BEFORE, MONTH, NOW)
    (first, empty), (month, rate) = report.months
    assert (first, month) == (BEFORE, MONTH)
    assert (empty.errors, empty.given, empty.not_given) == (0, 0, 0)
    # r01 has 4 doses a day; from the 2nd 08:00 (seeded at 06:00) to the 15th 08:00 that
    # is 54 due. One given and one refused on the 14th; the other 52 missed (the struck
    # Simvastatin among them). Given: that one and the PN dose.
    assert (rate.given, rate.not_given, rate.errors) == (2, 53, 52)
    assert rate.by_code == {Code.MISSED_DOSE: 52}
    assert rate.percent == Decimal("94.55")

    rendered = error_rate_pdf(report)
    pdf = PdfReader(io.BytesIO(rendered.content))
    assert rendered.pages == len(pdf.pages) == 1
    text = " ".join(pdf.pages[0].extract_text().split())
    name = MONTHS[MONTH.month - 1]
    for expected in ("Fejlrate for medicingivning", "Plejehjem: Solhaven Demo Care Home",
                     f"{MONTHS[BEFORE.month - 1]} {BEFORE.year} - {name} {MONTH.year}",
                     "Givne doser 0 2", "Ordineret, ikke givet 0 53", "Doser med fejl 0 52",
                     "Fejlrate 0 % 94,55 %", "Glemt dosis (MISSED_DOSE) 0 52",
                     "94,55", "Side 1 af 1"):
        assert expected in text, expected
    assert error_rate_filename(report) == f"fejlrate-{F}-{BEFORE:%Y-%m}-{MONTH:%Y-%m}.pdf"


def test_a_backward_or_too_long_range_is_refused() -> None:
    with pytest.raises(InvalidArgument) as e:
        error_report.month_range(MONTH, BEFORE)
    assert e.value.violations[0].field == "to_month"
    start = MONTH.replace(year=MONTH.year - 2)
    with pytest.raises(InvalidArgument) as e:
        error_report.month_range(start, MONTH)  # 25 months
    assert "24 months" in e.value.violations[0].description
    assert len(error_report.month_range(next_month(start), MONTH)) == 24
