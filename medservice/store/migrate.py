"""Apply Alembic migrations from code (the `medservice migrate` command and embedded start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from medservice.store.db import normalise_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # Alembic's config is ConfigParser-based: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", normalise_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str) -> None:
    """Bring the schema to the newest revision. Safe to run from several replicas at once."""
    command.upgrade(alembic_config(database_url), "head")


def schema_behind(database_url: str) -> str | None:
    """Why the database is not at the newest revision (not migrated at all, behind, or
    from a newer release), or None when it is. Read-only; connects once."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from medservice.store.db import make_engine

    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    if current == head:
        return None
    if current is None:
        return "the database has no medservice schema"
    known = {s.revision for s in ScriptDirectory.from_config(
        alembic_config(database_url)).walk_revisions()}
    if current not in known:
        return f"the database is at revision {current}, which this release does not know " \
               "(a newer release migrated it)"
    return f"the database is at revision {current}, not the newest ({head})"
