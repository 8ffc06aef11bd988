"""Per-caller rates and the quiet log (issue 13), on an injected clock."""

from __future__ import annotations

from typing import Any

from medservice.api.limits import CallRates, QuietLog, RequestSizes


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_caller_gets_its_burst_then_waits_for_the_refill() -> None:
    clock = Clock()
    rates = CallRates(per_second=2, burst=3, now=clock)
    assert [rates.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rates.take("a") == 0.5  # one call's worth at 2 per second
    assert rates.take("b") == 0.0  # another caller has its own bucket
    clock.t += 0.5
    assert rates.take("a") == 0.0
    assert rates.take("a") > 0
    clock.t += 60  # refills to the burst, not beyond
    assert [rates.take("a") for _ in range(4)][-1] > 0


def test_no_rate_means_no_limit_and_idle_buckets_are_dropped() -> None:
    assert all(CallRates(0, 1).take("a") == 0.0 for _ in range(1000))
    clock = Clock()
    rates = CallRates(per_second=1, burst=1, now=clock)
    rates.MAX_IDLE_BUCKETS = 10
    for i in range(10):
        rates.take(f"s{i}")
    clock.t += 5  # all full again
    rates.take("new")
    assert len(rates._buckets) == 1


def test_request_sizes_per_method() -> None:
    sizes = RequestSizes(default=10, documents=1000, per_method={"/x/Y": 5000})
    assert sizes.limit("/medservice.v1.RoundService/CheckDose") == 10
    assert sizes.limit("/medservice.v1.MedicineCardService/ImportFmkMessage") == 1000
    assert sizes.limit("/x/Y") == 5000
    assert sizes.largest == 5000


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


def test_the_quiet_log_writes_one_line_per_kind_per_interval_with_a_count() -> None:
    clock, out = Clock(), Recorder()
    quiet = QuietLog(out, interval=10, now=clock)
    for _ in range(500):
        quiet.warning("call refused", code="UNAUTHENTICATED", reason="MISSING_TOKEN")
    quiet.warning("call refused", code="INVALID_ARGUMENT", reason="MALFORMED_REQUEST")
    assert [f["reason"] for _, f in out.lines] == ["MISSING_TOKEN", "MALFORMED_REQUEST"]
    clock.t += 10
    quiet.warning("call refused", code="UNAUTHENTICATED", reason="MISSING_TOKEN")
    assert out.lines[-1][1]["suppressed"] == 499
