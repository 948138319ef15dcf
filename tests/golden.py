"""The golden record: what students and instructors get, so a refactor can show it changed nothing.

    .venv/bin/python tests/golden.py            # recompute and compare with tests/golden_record.json
    .venv/bin/python tests/golden.py --write    # regenerate it after a deliberate change

It holds
- release: the sha256 of every file that `python -m grading release` writes (path -> hash);
- grades.csv and every feedback page that `python -m grading autograde` writes for the
  example submissions of `grading.examples` (the ones `make demo` grades), graded with a
  fixed secret seed so that the hidden inputs are the same on every run.

tests/test_golden.py compares a fresh record with the stored one. A deliberate change (a new
task, a reworded message, a file added to the release) means regenerating the record with
`--write` and committing it with the change; `git diff tests/golden_record.json` then shows
exactly which files and grades moved.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORD = Path(__file__).resolve().parent / "golden_record.json"
SEED = b"golden-record-seed-not-secret-0123456789"  # a fixed seed: the hidden inputs never vary


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def release_hashes(outdir: Path, built: Path | None = None) -> dict[str, str]:
    """Build the release into `outdir` (which must not exist); path -> sha256 of every file.

    built: a release of this tree that grading.release.build already made (the test session's,
    tests/session.py), hashed instead of building it again (the same call makes both).
    """
    if built is not None:
        outdir = built
    else:
        subprocess.run([sys.executable, "-m", "grading", "release", str(outdir)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    return {p.relative_to(outdir).as_posix(): _sha(p.read_bytes())
            for p in sorted(outdir.rglob("*")) if p.is_file()}


def graded_examples(work: Path) -> dict:
    """Generate the example submissions, grade them; grades.csv and the feedback pages."""
    subs, out = work / "examples", work / "grades"
    subprocess.run([sys.executable, "-m", "grading.examples", str(subs)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    seed = work / "seed"
    seed.write_bytes(SEED)
    subprocess.run([sys.executable, "-m", "grading", "autograde", str(subs), "--out", str(out),
                    "--jobs", "2", "--quiet", "--seed-file", str(seed)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return {"grades_csv": (out / "grades.csv").read_text(encoding="utf-8").splitlines(),
            "feedback": {p.name: p.read_text(encoding="utf-8").splitlines()
                         for p in sorted((out / "feedback").glob("*.html"))}}


def compute(release: Path | None = None) -> dict:
    """The record of this tree; release: an already built release of it (else built here)."""
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        tmp = Path(tmp)
        record = {"release": release_hashes(tmp / "release", release)}
        record.update(graded_examples(tmp))
    return record


def diff(old: dict, new: dict) -> list[str]:
    """What differs, one line each (empty when the records are identical)."""
    lines = []
    for path in sorted(set(old["release"]) | set(new["release"])):
        a, b = old["release"].get(path), new["release"].get(path)
        if a != b:
            what = "added" if a is None else "removed" if b is None else "changed"
            lines.append(f"release: {path} {what}")
    if old["grades_csv"] != new["grades_csv"]:
        gone = sorted(set(old["grades_csv"]) - set(new["grades_csv"]))
        came = sorted(set(new["grades_csv"]) - set(old["grades_csv"]))
        lines += [f"grades.csv: - {r}" for r in gone] + [f"grades.csv: + {r}" for r in came]
        if not gone and not came:
            lines.append("grades.csv: the same rows in another order")
    for name in sorted(set(old["feedback"]) | set(new["feedback"])):
        if old["feedback"].get(name) != new["feedback"].get(name):
            lines.append(f"feedback: {name} differs")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/golden.py", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help=f"store the fresh record in {RECORD.name}")
    args = parser.parse_args(argv)
    new = compute()
    if args.write:
        RECORD.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {RECORD}")
        return 0
    changes = diff(json.loads(RECORD.read_text(encoding="utf-8")), new)
    print("\n".join(changes) or "identical to the golden record")
    return 1 if changes else 0


if __name__ == "__main__":
    sys.exit(main())
