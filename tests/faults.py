"""``bench`` with a fault-injection hook, for the reliability tests (never used by the package).

    python -m tests.faults run SUITE --store S.sqlite     # = bench run SUITE --store S.sqlite

With ``BENCH_FAULT_MARKER=PATH`` and ``BENCH_FAULT_COMMIT_DELAY=SECONDS`` set, every transaction
that stores a finished run pauses after its last write and before its COMMIT, with the file PATH
created, so a test that sees PATH can SIGKILL the process in the middle of a store write.

With ``BENCH_FAULT_HOLD=PATH`` set, the driver stops after storing its first finished run, with
the file PATH created, until a signal ends it: a test that sees PATH interrupts a suite that
certainly has unfinished runs, however slow or loaded the machine.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from bench import store
from bench.cli import main

_in_result = [False]


def _install(marker: Path, delay: float) -> None:
    write_result = store.Store.write_result
    exit_ = store._Transaction.__exit__

    def slow_write_result(self, result):
        _in_result[0] = True
        try:
            return write_result(self, result)
        finally:
            _in_result[0] = False

    def slow_exit(self, exc_type, exc, tb):
        if exc_type is None and _in_result[0]:
            marker.touch()  # the run's rows are written, not committed
            time.sleep(delay)
        return exit_(self, exc_type, exc, tb)

    store.Store.write_result = slow_write_result
    store._Transaction.__exit__ = slow_exit


def _hold_after_first_run(marker: Path) -> None:
    write_result = store.Store.write_result

    def write_and_hold(self, result):
        out = write_result(self, result)
        marker.touch()
        while True:  # until a signal handler raises (SIGINT, SIGTERM) or the process is killed
            time.sleep(3600)
        return out

    store.Store.write_result = write_and_hold


if __name__ == "__main__":
    if os.environ.get("BENCH_FAULT_HOLD"):
        _hold_after_first_run(Path(os.environ["BENCH_FAULT_HOLD"]))
    if os.environ.get("BENCH_FAULT_MARKER"):
        _install(
            Path(os.environ["BENCH_FAULT_MARKER"]), float(os.environ.get("BENCH_FAULT_COMMIT_DELAY", "1"))
        )
    sys.exit(main(sys.argv[1:]))
