"""Logs: each JSON record is exactly one line, whatever the concurrency (issue 13).

Run in a child process writing to a pipe, as a server under a log shipper does: structlog
and the standard library (grpc, sqlalchemy) logging from many threads at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

_CHILD = textwrap.dedent("""
    import logging, sys, threading
    import structlog
    from medservice.logs import configure_logging

    configure_logging("json", "info")
    log = structlog.get_logger("medservice.test")
    std = logging.getLogger("grpc.test")
    start = threading.Barrier(8)

    def work(n):
        start.wait()
        for i in range(400):
            if n % 2:
                log.info("call", n=n, i=i, note="x" * (i % 300), text="two\\nlines")
            else:
                std.warning("stdlib %d %d %s", n, i, "y" * (i % 300))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        raise ValueError("a fault\\nover lines")
    except ValueError:
        log.exception("unexpected error")
""")


def test_every_json_record_is_one_line_under_concurrent_writers() -> None:
    done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                          timeout=120, check=True)
    lines = done.stderr.splitlines()
    records = [json.loads(line) for line in lines]  # a glued or split record fails here
    assert len(records) == 8 * 400 + 1
    assert sum(r.get("event") == "call" for r in records) == 4 * 400
    assert sum(str(r.get("event", "")).startswith("stdlib") for r in records) == 4 * 400
    assert records[-1]["event"] == "unexpected error" and "exception" in records[-1]
