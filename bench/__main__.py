"""Run every bench/*_bench.py module's run() and write the figures to bench/results.json.

Benchmarks are not timed tests: the machines are shared and noisy, so each figure comes with
a baseline measured in the same run, and the ratio is what to read.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main(argv: list[str]) -> int:
    wanted = set(argv)
    results: dict[str, object] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for info in sorted(pkgutil.iter_modules([str(HERE)]), key=lambda m: m.name):
        if not info.name.endswith("_bench") or (wanted and info.name not in wanted):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        print(f"== {info.name}", flush=True)
        figures = module.run()
        results[info.name] = figures
        print(json.dumps(figures, indent=2), flush=True)
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {HERE / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
