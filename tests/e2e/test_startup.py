"""Operator mistakes at start-up and in the tools end in one line that says what to do,
never a traceback and never a server that says "serving" and then fails every call
(issue 13)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from medservice.store.migrate import schema_behind, upgrade

ROOT = Path(__file__).resolve().parents[2]
MEDSERVICE = [sys.executable, "-m", "medservice.cli"]
MEDCTL = [sys.executable, "-m", "clients.medctl"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSERVICE_")}
    env.update(PYTHONPATH=str(ROOT), MEDSERVICE_LISTEN=f"127.0.0.1:{_free_port()}",
               MEDSERVICE_VAR_DIR=str(tmp_path / "var"), MEDSERVICE_HTTP_LISTEN="")
    env.update({f"MEDSERVICE_{k}": v for k, v in settings.items()})
    return env


def _one_line_refusal(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run a command that must refuse: exit 2, one line on stderr, no traceback."""
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "Traceback" not in out, out
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, out
    return lines[0]


def test_serve_refuses_an_unmigrated_postgres_then_serves_once_migrated(
        empty_postgres: str, tmp_path: Path) -> None:
    env = _env(tmp_path, DATABASE_URL=empty_postgres)
    line = _one_line_refusal([*MEDSERVICE, "serve"], env, tmp_path)
    assert "no medservice schema" in line and "medservice migrate" in line, line
    upgrade(empty_postgres)
    assert schema_behind(empty_postgres) is None


def test_serve_refuses_a_database_behind_the_newest_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    from alembic import command

    from medservice.store.migrate import alembic_config

    command.upgrade(alembic_config(url), "0009")
    env = _env(tmp_path, DATABASE_URL=url)
    line = _one_line_refusal([*MEDSERVICE, "serve", "--no-migrate"], env, tmp_path)
    assert "revision 0009, not the newest" in line and "medservice migrate" in line, line


def test_a_taken_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _env(tmp_path, LISTEN=f"127.0.0.1:{port}")
        line = _one_line_refusal([*MEDSERVICE, "serve"], env, tmp_path)
    assert f"127.0.0.1:{port}" in line and "in use" in line and "--listen" in line, line


@pytest.mark.parametrize(("settings", "named"), [
    ({"WORKER_THREADS": "many"}, "MEDSERVICE_WORKER_THREADS"),
    ({"JWT_SECRET": "short"}, "MEDSERVICE_JWT_SECRET"),
    ({"ENVIRONMENT": "production"}, "MEDSERVICE_JWT_SECRET"),
    ({"JWT_PUBLIC_KEY_FILES": "/nonexistent/key.pem"}, "/nonexistent/key.pem"),
    ({"LISTEN": "nowhere"}, "HOST:PORT"),
    ({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}, "MEDSERVICE_DATABASE_URL"),
])
def test_a_wrong_setting_is_one_line_naming_it(tmp_path: Path, settings: dict[str, str],
                                                named: str) -> None:
    line = _one_line_refusal([*MEDSERVICE, "serve"], _env(tmp_path, **settings), tmp_path)
    assert named in line, line


def test_medctl_names_a_missing_file_in_one_line(tmp_path: Path) -> None:
    env = _env(tmp_path, TOKEN="not-needed-to-read-a-file")
    line = _one_line_refusal([*MEDCTL, "--target", "127.0.0.1:1", "import", "fmk",
                              str(tmp_path / "missing.xml"), "--resident",
                              "facilities/demo/residents/r1"], env, tmp_path)
    assert line == f"medctl: kan ikke læse {tmp_path / 'missing.xml'}: No such file or directory"
