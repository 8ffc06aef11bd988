"""`medservice check-config` as an operator runs it: exit 0 and one line when usable,
exit 2 and one line per problem (no traceback) when not, and it never serves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSERVICE_")}
    env.update(PYTHONPATH=str(ROOT), MEDSERVICE_VAR_DIR=str(tmp_path / "var"),
               MEDSERVICE_DATABASE_URL=f"sqlite:///{tmp_path / 'm.db'}")
    env.update({f"MEDSERVICE_{k}": v for k, v in settings.items()})
    return subprocess.run([sys.executable, "-m", "medservice.cli", "check-config"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_a_usable_configuration_passes(tmp_path: Path) -> None:
    done = _run(tmp_path, JWT_SECRET="s" * 40)
    assert done.returncode == 0, done.stderr
    assert "usable" in done.stdout and "HTTP on 127.0.0.1:8080" in done.stdout
    assert not (tmp_path / "m.db").exists()  # checked, not created


def test_problems_are_one_line_each(tmp_path: Path) -> None:
    done = _run(tmp_path, ENVIRONMENT="production", LISTEN="nowhere", LOG_FORMAT="json")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr
    assert all(line.startswith("medservice: ") for line in lines), lines
    assert any("MEDSERVICE_LISTEN" in line for line in lines)
    assert any("production needs PostgreSQL" in line for line in lines)
    assert any("MEDSERVICE_JWT_SECRET" in line for line in lines)
