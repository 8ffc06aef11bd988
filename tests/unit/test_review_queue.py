"""The review queue's order rule (no database): open before needing follow-up, each from
high to info."""

from __future__ import annotations

from medservice.reconcile import Severity
from medservice.store.discrepancies import Status, queue_rank


def test_open_comes_first_then_severity_high_to_info() -> None:
    order = [(status, severity) for status in (Status.OPEN, Status.REVIEWED)
             for severity in (Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO)]
    assert [queue_rank(s, v) for s, v in order] == list(range(8))


def test_any_open_discrepancy_precedes_any_reviewed_one() -> None:
    assert max(queue_rank(Status.OPEN, s) for s in Severity) < \
        min(queue_rank(Status.REVIEWED, s) for s in Severity)
