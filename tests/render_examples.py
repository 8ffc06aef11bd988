"""Writes the example documents of docs/ from the demo home of tests/unit/test_charts.py
(the current month, seeded on the 2nd, read on the 15th at 14:00; the emergency list
is that evening's, as written ahead):

    .venv/bin/python -m tests.render_examples OUTDIR

then render the first page of each in grey, e.g. with poppler-utils
`pdftoppm -png -gray -r 110 -singlefile OUTDIR/medicinskema.pdf docs/medicinskema` (or
PyMuPDF, which made the PNGs in docs/; neither is a dependency)."""

from __future__ import annotations

import sys
from pathlib import Path

from medservice.reports.emergency import emergency_pdf
from medservice.reports.mar import chart_pdf
from medservice.service import rounds
from tests.unit.test_charts import MONTH, NOW, F, _chart, seeded_home


def main(out: Path) -> None:
    db = seeded_home()
    out.mkdir(parents=True, exist_ok=True)
    (out / "medicinskema.pdf").write_bytes(chart_pdf(_chart(db)).content)
    with db(write=False) as u:
        lst = rounds.emergency_list(u, F, MONTH.replace(day=15), "evening", NOW)
    (out / "noedliste.pdf").write_bytes(emergency_pdf(lst).content)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "var/examples"))
