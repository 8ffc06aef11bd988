"""store.bulk on both stores: the same rows, conflicts, updates and returned values
whether they go as executemany (SQLite) or as one JSON parameter (PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select

from medservice.store import tables as t
from medservice.store.bulk import any_of, insert_rows
from medservice.store.repositories import _utc

NOW = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
_H = t.schedule_horizons.c
_L = t.alert_logs.c


def test_insert_skip_update_and_return(engine: Engine) -> None:
    with engine.begin() as conn:
        assert sorted(insert_rows(conn, t.alert_logs, [
            dict(facility_id=f"f{i}", last_position=i, pruned_through=0) for i in range(3)
        ], returning=_L.facility_id)) == ["f0", "f1", "f2"]
        # A conflict is left out, and only the new row is returned.
        again = insert_rows(conn, t.alert_logs, [
            dict(facility_id="f1", last_position=99, pruned_through=99),
            dict(facility_id="f3", last_position=3, pruned_through=0)],
            on_conflict=["facility_id"], returning=_L.facility_id)
        assert again == ["f3"]
        # With `update`, a conflict overwrites those columns only.
        insert_rows(conn, t.alert_logs, [
            dict(facility_id="f2", last_position=42, pruned_through=7)],
            on_conflict=["facility_id"], update=["last_position"])
        rows = dict((r[0], (r[1], r[2])) for r in conn.execute(
            select(_L.facility_id, _L.last_position, _L.pruned_through)))
    assert rows == {"f0": (0, 0), "f1": (1, 0), "f2": (42, 0), "f3": (3, 0)}


def test_instants_keep_their_moment_and_naive_ones_are_refused(engine: Engine) -> None:
    copenhagen = timezone(timedelta(hours=2))
    with engine.begin() as conn:
        insert_rows(conn, t.schedule_horizons, [
            dict(facility_id="f", materialised_until=NOW)])
        stored = conn.scalar(select(_H.materialised_until))
        assert stored is not None and _utc(stored) == NOW
        if engine.dialect.name == "postgresql":  # SQLite stores what SQLAlchemy gives it
            insert_rows(conn, t.schedule_horizons, [
                dict(facility_id="g", materialised_until=NOW.astimezone(copenhagen))])
            assert conn.scalar(select(_H.materialised_until).where(
                _H.facility_id == "g")) == NOW
            with pytest.raises(ValueError, match="naive"):
                insert_rows(conn, t.schedule_horizons, [
                    dict(facility_id="h", materialised_until=NOW.replace(tzinfo=None))])


def test_any_of_matches_an_in_list(engine: Engine) -> None:
    ids = [f"f{i}" for i in range(5000)]
    with engine.begin() as conn:
        insert_rows(conn, t.alert_logs, [dict(facility_id=f, last_position=0,
                                              pruned_through=0) for f in ids])
        found = set(conn.scalars(select(_L.facility_id).where(
            any_of(conn, _L.facility_id, [*ids[::7], "nowhere"]))))
    assert found == set(ids[::7])
