"""`make bench`: runs every bench/bench_*.py module's `run(report)` and prints
one `name: value` line per figure. BENCH_PEOPLE scales the organisation down;
BENCH_ONLY=expertise,slack runs a subset."""
from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path


class Report:
    def __init__(self) -> None:
        self.figures: dict[str, float | str] = {}

    def figure(self, name: str, value: float | str) -> None:
        self.figures[name] = value
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{name}: {shown}", flush=True)

    @staticmethod
    def people() -> int:
        return int(os.environ.get("BENCH_PEOPLE", "100000"))


def main() -> int:
    only = {s.strip() for s in os.environ.get("BENCH_ONLY", "").split(",") if s.strip()}
    report = Report()
    here = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda i: i.name):
        if not info.name.startswith("bench_"):
            continue
        if only and info.name.removeprefix("bench_") not in only:
            continue
        module = importlib.import_module(f"bench.{info.name}")
        started = time.perf_counter()
        print(f"# {info.name}", flush=True)
        module.run(report)
        print(f"# {info.name} took {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
