"""Throughput of the autograder: module tests only, or complete submissions.

    python -m bench.grading [--n 100] [--jobs 2]
    python -m bench.grading --notebooks [--n 10] [--jobs 2]

Generates N submissions (alternately the reference and a partly wrong copy, made by
grading.examples patches), grades them with `python -m grading autograde --jobs J` end
to end (suite build, unpacking, sandboxed workers, results, grades.csv, feedback), and
prints a table with the time per 100 submissions against the target, PASS or MISS
(extrapolated linearly when N < 100, and said so).
- default: the module only (no model file, no notebooks). Target: 100 in <= 60 s.
- --notebooks: complete submissions: the module, a trained convnet_model.npz (trained
  once here) and both notebooks, executed by nbgrader in the sandbox. Under the grader
  (CS_LAYERS_GRADING=1) the training cell loads the submitted checkpoint instead of
  retraining it. Target: 100 in <= 600 s (10 minutes).
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grading.examples import MODEL_FILE, append_patch, copy_notebooks, copy_reference, train_model, wrap

REPO = Path(__file__).resolve().parent.parent
TARGET_N = 100
TARGET_S = {False: 60.0, True: 600.0}  # seconds for TARGET_N submissions, by --notebooks


def make_class(root: Path, n: int, model: Path | None = None) -> None:
    """n submissions in root; with a model, each also carries it and both notebooks."""
    for i in range(n):
        sub = copy_reference(root / f"s{i:03d}")
        if model is not None:
            (sub / MODEL_FILE).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model, sub / MODEL_FILE)
            copy_notebooks(sub)
        if i % 2:
            append_patch(sub, "layers.py", wrap("conv_backward_naive", """
                dx, dw, db = _orig(*args, **kwargs)
                return dx, dw, -db
            """))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grading", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=TARGET_N, help="number of submissions")
    parser.add_argument("--jobs", type=int, default=2, help="students graded in parallel")
    parser.add_argument("--notebooks", action="store_true",
                        help="complete submissions: module, trained model and both notebooks (nbgrader)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        subs, out = Path(tmp) / "subs", Path(tmp) / "out"
        model = None
        if args.notebooks:
            model = Path(tmp) / "model.npz"
            print(f"trained the submissions' model (validation accuracy {train_model(model):.3f})")
        make_class(subs, args.n, model)
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
    wrong = sum(r["status"] == "failed" and not r["task"].startswith("nb:") for r in rows)
    target = TARGET_S[args.notebooks]
    per_100 = took * TARGET_N / max(args.n, 1)
    what = "complete submissions (module, model, both notebooks)" if args.notebooks else "module only"
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print("\n".join(layers))
    print(f"\n{what}; {os.cpu_count()} CPUs, load average {load} (other work inflates these times)")
    print(f"{'submissions':>11} {'jobs':>5} {'seconds':>8} {'s/subm':>7} {'s per 100':>10}  target")
    extrapolated = "" if args.n >= TARGET_N else f" (extrapolated from {args.n})"
    print(f"{graded:>11} {args.jobs:>5} {took:>8.1f} {took / max(graded, 1):>7.1f} {per_100:>10.0f}  "
          f"{TARGET_N} in <= {target:g} s: {'PASS' if per_100 <= target else 'MISS'}{extrapolated}")
    print(f"({wrong} failed module task rows, expected {args.n // 2}: the partly wrong copies)")
    return 0 if graded == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
