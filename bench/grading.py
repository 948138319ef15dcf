"""Throughput of the autograder on the module tests.

    python -m bench.grading [--n 100] [--jobs 2]

Generates N submissions (alternately the reference and a partly wrong copy, made by
grading.examples patches; no model file, no notebooks), grades them with
`python -m grading autograde --jobs J` end to end (suite build, unpacking, sandboxed
workers, results, grades.csv, feedback), and prints a table. Target: 100 submissions in
<= 60 s with --jobs 2 on a 2-core machine.
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grading.examples import append_patch, copy_reference, wrap

REPO = Path(__file__).resolve().parent.parent
TARGET_N, TARGET_S = 100, 60.0


def make_class(root: Path, n: int) -> None:
    for i in range(n):
        sub = copy_reference(root / f"s{i:03d}")
        if i % 2:
            append_patch(sub, "layers.py", wrap("conv_backward_naive", """
                dx, dw, db = _orig(*args, **kwargs)
                return dx, dw, -db
            """))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grading", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=TARGET_N, help="number of submissions")
    parser.add_argument("--jobs", type=int, default=2, help="students graded in parallel")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        subs, out = Path(tmp) / "subs", Path(tmp) / "out"
        make_class(subs, args.n)
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "grading", "autograde", str(subs), "--out",
                               str(out), "--jobs", str(args.jobs), "--quiet"], cwd=REPO,
                              capture_output=True, text=True)
        took = time.monotonic() - start
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
            return proc.returncode
        with open(out / "grades.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        layers = [line for line in proc.stdout.splitlines() if line.startswith(("  [", "WARNING"))]
    graded = len({r["student_id"] for r in rows})
    wrong = sum(r["status"] == "failed" for r in rows)
    print("\n".join(layers))
    print(f"\n{'submissions':>11} {'jobs':>5} {'seconds':>8} {'subm/s':>7} {'target':>18}")
    verdict = "met" if args.n >= TARGET_N and took <= TARGET_S * args.n / TARGET_N else "-"
    print(f"{graded:>11} {args.jobs:>5} {took:>8.1f} {graded / took:>7.2f} "
          f"{f'{TARGET_N} in <= {TARGET_S:g} s':>14} {verdict}")
    print(f"({wrong} failed task rows, expected {args.n // 2}: the partly wrong copies)")
    return 0 if graded == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
