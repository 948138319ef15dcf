"""`python -m grading collect-manual OUT`: bring formgrader's manual scores into grades.csv.

After `python -m grading autograde SUBMISSIONS --out OUT`, the inline questions
(nb:<task>:manual rows) are "pending", 0 of their points. Instructors grade them in
nbgrader's formgrader (served from OUT, see the README), which writes OUT/gradebook.db.
This command reads those manual scores and rewrites OUT/grades.csv and the feedback pages:

- a row whose cells are all graded by hand becomes status "graded" with their sum;
- every other row (the hidden tests, the autograded notebook checks, answers not graded
  yet) keeps what autograde gave it;
- it prints each row it changes, old -> new, and writes grades.csv atomically, only when
  something changed (`--dry-run` prints and writes nothing).

autograde itself applies the manual scores graded so far whenever it writes grades.csv
(a `--resume` that grades a late submission keeps them).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from grading.results import TaskResult


def apply(out: Path, records: dict[str, dict]) -> list[str]:
    """Set the nb:<task>:manual rows of `records` from OUT/gradebook.db; lines saying what changed."""
    from grading import autograde, gradebook

    if not (Path(out) / gradebook.DB_NAME).is_file():
        return []
    manual = gradebook.manual_scores(Path(out))
    changes = []
    for sid in sorted(records):
        results = records[sid]["results"]
        for i, r in enumerate(results):
            score = manual.get(sid, {}).get(r.task)
            if score is None or not r.task.endswith(":manual"):
                continue
            new = TaskResult(r.task, round(min(max(score, 0.0), r.max_score), 2), r.max_score,
                             "graded", "graded by hand by the instructor")
            if (new.score, new.status) != (r.score, r.status):
                changes.append(f"{sid} {r.task}: {r.status} {autograde.fmt(r.score)} -> "
                               f"{new.status} {autograde.fmt(new.score)} "
                               f"(of {autograde.fmt(r.max_score)})")
            results[i] = new
    return changes


def _csv_rows(path: Path) -> dict[tuple[str, str], tuple[str, str, str]]:
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {(r["student_id"], r["task"]): (r["score"], r["max_score"], r["status"])
                for r in csv.DictReader(f)}


def _show(row) -> str:
    return "absent" if row is None else f"{row[2]} {row[0]}/{row[1]}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grading collect-manual",
        description="Merge the manual scores graded in nbgrader's formgrader (OUT/gradebook.db) "
                    "into OUT/grades.csv and the feedback pages.")
    parser.add_argument("out", type=Path, help="the --out folder of `python -m grading autograde`")
    parser.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    args = parser.parse_args(argv)

    from grading import autograde, gradebook

    out = args.out
    seed_file = out / autograde.SEED_FILE
    if not (out / "results").is_dir() or not seed_file.is_file():
        parser.error(f"{out} holds no autograde run (no results/ or {autograde.SEED_FILE}); "
                     "pass the folder given to `python -m grading autograde --out`")
    if not (out / gradebook.DB_NAME).is_file():
        parser.error(f"{out / gradebook.DB_NAME} does not exist: no notebook was graded, so there "
                     "is nothing to grade by hand")
    sid_seed = autograde.seed_id(bytes.fromhex(seed_file.read_text().strip()))
    records = {}
    for path in sorted((out / "results").glob("*.json")):
        rec = autograde.read_record(path, sid_seed)
        if rec is None:
            print(f"WARNING: {path} is not a finished record of this run; run `python -m grading "
                  "autograde ... --resume` to grade that student, then collect again",
                  file=sys.stderr)
            continue
        records[path.stem] = rec
    before = _csv_rows(out / "grades.csv")
    changes = apply(out, records)
    after = {(sid, r.task): (autograde.fmt(r.score), autograde.fmt(r.max_score), r.status)
             for sid, rec in records.items() for r in rec["results"]}
    differ = sorted(k for k in after.keys() | before.keys() if after.get(k) != before.get(k))
    for sid, task in differ:
        old, new = before.get((sid, task)), after.get((sid, task))
        print(f"{sid} {task}: {_show(old)} -> {_show(new)}")
    if not differ:
        print(f"no change: {out / 'grades.csv'} already holds every manual score graded so far "
              f"({len(changes)} manual row(s) graded)")
        return 0
    if args.dry_run:
        print(f"--dry-run: {len(differ)} row(s) would change; nothing written")
        return 0
    autograde.export(out, records)
    print(f"updated {len(differ)} row(s) of {out / 'grades.csv'} and the feedback pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
