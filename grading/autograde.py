"""Grade a class: `python -m grading autograde SUBMISSIONS --out OUT [--jobs N] [--resume]`.

SUBMISSIONS holds `<student_id>/` folders and/or `<student_id>.zip` files laid out like
the release. For each student, in parallel worker processes:

    unpack (whitelist only) -> grade_module (hidden tests, sandboxed worker)
                            -> grade_model (task2_9, the saved checkpoint)
                            -> notebook_results (nbgrader; see its docstring)
    -> OUT/results/<student_id>.json   written atomically as soon as the student is done

then OUT/grades.csv (student_id, task, score, max_score, status), OUT/feedback/<id>.html
and a grade table on stdout. The secret seed of the hidden inputs is kept in
OUT/.secret_seed (mode 0600) so that `--resume` grades the remaining students on the same
hidden inputs and never regrades a finished one.

The grader never imports student code, and never crashes on a bad submission: any
exception while grading one student becomes an "error" result with a message.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import hashlib
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from grading import feedback
from grading.results import TaskResult
from grading.unpack import MODEL_FILE, NOTEBOOKS, Intake, Rejected, unpack

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MODEL_TASK = "task2_9"
SEED_FILE = ".secret_seed"
RECORD_VERSION = 1
DEFAULT_TIMEOUT_S = 1200.0  # one submission, all parts; a correct one takes about 3 min
OUT_OF_TIME = "not finished: the time budget of this submission ran out"
DISK_PER_SUBMISSION_MB = 512  # the tmpfs holding one student's staging + work folders
ABBREV = {"passed": "", "failed": "F", "error": "E", "timeout": "T", "memory": "M",
          "missing": "-", "rejected": "R", "pending": "P"}

_SUITE = None  # set in each pool worker (inherited on fork, or by the initializer)


# ---------------------------------------------------------------- students and seed

@dataclass(frozen=True)
class Submission:
    student_id: str
    path: Path


def discover(root: Path) -> tuple[list[Submission], list[str], list[str]]:
    """Submissions under `root`, plus (duplicated ids, warnings about skipped entries)."""
    found: dict[str, list[Path]] = {}
    warnings = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            sid = entry.name[:-4] if entry.name.lower().endswith(".zip") else entry.name
        elif entry.is_dir():
            sid = entry.name
        elif entry.is_file() and entry.suffix.lower() == ".zip":
            sid = entry.name[:-4]
        else:
            warnings.append(f"skipped {entry.name}: not a <student_id>/ folder or <student_id>.zip")
            continue
        if not STUDENT_ID.match(sid):
            warnings.append(f"skipped {entry.name!r}: a student id may only hold letters, digits, "
                            "'_', '-', '.' (64 at most, not starting with '.'); rename it")
            continue
        found.setdefault(sid, []).append(entry)
    subs = [Submission(sid, paths[0]) for sid, paths in found.items()]
    dups = [sid for sid, paths in found.items() if len(paths) > 1]
    return subs, dups, warnings


def load_seed(out: Path, seed_file: Path | None, resume: bool) -> bytes:
    """The secret seed of this run, kept in OUT/.secret_seed (mode 0600)."""
    kept = out / SEED_FILE
    seed = None
    if seed_file is not None:
        seed = Path(seed_file).read_bytes()
        if len(seed) < 16:
            raise SystemExit(f"--seed-file {seed_file} holds {len(seed)} bytes; use at least 16 "
                             "random bytes (e.g. `head -c 32 /dev/urandom > seed`)")
    if resume and kept.exists():
        old = bytes.fromhex(kept.read_text().strip())
        if seed is not None and seed != old:
            raise SystemExit(f"--seed-file differs from the seed kept in {kept}; a resumed run "
                             "must use the same hidden inputs; drop --seed-file or --resume")
        return old
    seed = seed if seed is not None else os.urandom(32)
    fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(seed.hex() + "\n")
    os.chmod(kept, 0o600)
    return seed


def seed_id(seed: bytes) -> str:
    return hashlib.sha256(b"grading-seed-id:" + seed).hexdigest()[:16]


# ---------------------------------------------------------------- grading one student

def _hidden_tests():
    from grading import hidden_tests  # imports the instructor's cs_layers (grader side only)
    return hidden_tests


def module_tasks() -> list[str]:
    tasks = [t for t in _hidden_tests().TASK_POINTS if t != MODEL_TASK]
    return sorted(tasks, key=_task_key)


def _task_key(task: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", task)]


def _all_failed(status: str, message: str, tasks=None) -> list[TaskResult]:
    points = _hidden_tests().TASK_POINTS
    tasks = list(tasks) if tasks is not None else module_tasks() + [MODEL_TASK]
    return [TaskResult(t, 0.0, float(points[t]), status, message) for t in tasks]


def notebook_results(staging: Path, student_id: str, *, workdir: Path,
                     out: Path | None = None, deadline: float | None = None) -> list[TaskResult]:
    """THE call site for notebook grading (nbgrader, sandboxed): results for notebook tasks.

    `grading.notebooks.grade_notebooks` uses its own NOTEBOOK_LIMITS (the module limits are
    far too short for a notebook) and records into OUT/gradebook.db.
    """
    from grading import notebooks
    return notebooks.grade_notebooks(staging, student_id, workdir=workdir, course_out=out,
                                     deadline=deadline)


def grade_submission(sub: Submission, suite, *, limits=None, out: Path | None = None,
                     timeout: float = DEFAULT_TIMEOUT_S) -> tuple[list[TaskResult], str]:
    """All results for one student, and a note for the feedback (intake problems).

    Everything graded (module cases, the checkpoint, notebooks) shares one wall-clock
    budget of `timeout` seconds; what is not finished by then is "timeout".
    """
    from grading import sandbox
    hidden_tests = _hidden_tests()
    deadline = time.monotonic() + timeout
    sandbox.reset_usage()  # peaks of this student's runs, kept in the record (bench.grading)
    with tempfile.TemporaryDirectory(prefix=f"grade-{sub.student_id}-") as tmp, \
            sandbox.bounded_folder(Path(tmp), DISK_PER_SUBMISSION_MB):
        tmp = Path(tmp)
        try:
            intake = unpack(sub.path, tmp / "staging")
            os.chmod(tmp / "staging", 0o700)  # other students' uids may traverse tmp/
        except Rejected as err:
            return _all_failed("rejected", f"submission rejected: {err}"), f"Rejected: {err}"
        note = ""
        if intake.ignored:
            shown = ", ".join(intake.ignored[:10]) + (" ..." if len(intake.ignored) > 10 else "")
            note = f"Ignored files (not part of the release layout): {shown}"
        (tmp / "work").mkdir()
        try:
            results = list(hidden_tests.grade_module(tmp / "staging", suite, workdir=tmp / "work",
                                                     limits=limits, deadline=deadline))
        except Exception as err:  # a grader bug must not cost the class its run
            results = _all_failed("error", _grader_error("module grading", err), module_tasks())
        results = _complete(results, module_tasks())
        model = tmp / "staging" / MODEL_FILE
        try:
            if time.monotonic() >= deadline:
                results += _all_failed("timeout", OUT_OF_TIME, [MODEL_TASK])
            else:
                results.append(hidden_tests.grade_model(model if model.is_file() else None))
        except Exception as err:
            results += _all_failed("error", _grader_error("model grading", err), [MODEL_TASK])
        try:
            (tmp / "nbwork").mkdir()
            results += notebook_results(tmp / "staging", sub.student_id,
                                        workdir=tmp / "nbwork", out=out, deadline=deadline)
        except Exception as err:
            results.append(TaskResult("nb:notebooks", 0.0, 0.0, "error",
                                      _grader_error("notebook grading", err)))
        return results, note


def _complete(results: list[TaskResult], tasks: list[str]) -> list[TaskResult]:
    """Exactly one result per module task, in order; a missing one is a grader error."""
    by_task = {r.task: r for r in results if isinstance(r, TaskResult)}
    out = []
    for t in tasks:
        out.append(by_task.get(t) or _all_failed(
            "error", "the grader produced no result for this task; tell the instructor", [t])[0])
    return out


def _grader_error(part: str, err: BaseException) -> str:
    print(f"grader error in {part}:\n{traceback.format_exc()}", file=sys.stderr)
    return (f"the grader hit an internal error in {part} ({type(err).__name__}); this is not "
            "your fault: tell the instructor, your submission will be regraded")


def make_record(sid: str, results: list[TaskResult], note: str, sid_seed: str, run_id: str,
                duration: float, usage: dict | None = None) -> dict:
    return {"version": RECORD_VERSION, "complete": True, "student_id": sid, "seed_id": sid_seed,
            "run_id": run_id, "graded_at": time.time(), "duration_s": round(duration, 3),
            "usage": usage or {}, "note": note, "results": [r.to_dict() for r in results]}


def write_json_atomic(path: Path, obj) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _init_pool(suite) -> None:
    global _SUITE
    if suite is not None:
        _SUITE = suite


def _grade_job(sub: Submission, results_dir: Path, sid_seed: str, run_id: str, limits,
               timeout: float = DEFAULT_TIMEOUT_S) -> dict:
    """Pool task: grade one student and write their record atomically; never raises."""
    start = time.monotonic()
    try:
        results, note = grade_submission(sub, _SUITE, limits=limits, out=results_dir.parent,
                                         timeout=timeout)
    except BaseException as err:  # noqa: BLE001 (SystemExit from a library included)
        results, note = _all_failed("error", _grader_error("grading", err)), ""
    from grading import sandbox
    record = make_record(sub.student_id, results, note, sid_seed, run_id, time.monotonic() - start,
                         sandbox.usage())
    write_json_atomic(results_dir / f"{sub.student_id}.json", record)
    return record


def _remove_stale_tmp(results_dir: Path) -> None:
    for tmp in results_dir.glob(".*.json.*.tmp"):
        tmp.unlink(missing_ok=True)


def read_record(path: Path, sid_seed: str) -> dict | None:
    """A finished student's record, or None when absent, partial or from another seed."""
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
        if (rec.get("complete") is not True or rec.get("seed_id") != sid_seed
                or rec.get("student_id") != path.stem):
            return None
        rec["results"] = [TaskResult.from_dict(d) for d in rec["results"]]
        return rec
    except (OSError, ValueError, KeyError, TypeError):
        return None


def grade_all(subs: list[Submission], suite, *, results_dir: Path, sid_seed: str, jobs: int,
              limits=None, progress: bool = True,
              timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, dict]:
    """Grade `subs` with `jobs` worker processes; a broken pool is retried once per student."""
    run_id = uuid.uuid4().hex
    records: dict[str, dict] = {}
    attempts: dict[str, int] = {}
    ctx = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() \
        else None
    global _SUITE
    _SUITE = suite  # inherited by forked workers
    bar = tqdm(total=len(subs), desc="grading", unit="student", disable=not progress)
    # First round: one shared pool. A student whose grading process died (and the students
    # in flight beside it) are retried, each alone in a fresh pool; dying twice is an error.
    rounds = [list(subs)]
    try:
        while rounds:
            batch = rounds.pop(0)
            retry = []
            with cf.ProcessPoolExecutor(max_workers=min(jobs, len(batch)), mp_context=ctx,
                                        initializer=_init_pool,
                                        initargs=(None if ctx else suite,)) as pool:
                futures = {pool.submit(_grade_job, s, results_dir, sid_seed, run_id, limits,
                                       timeout): s
                           for s in batch}
                for fut in cf.as_completed(futures):
                    sub = futures[fut]
                    try:
                        records[sub.student_id] = fut.result()
                    except Exception as err:  # BrokenProcessPool: a grading process died
                        attempts[sub.student_id] = attempts.get(sub.student_id, 0) + 1
                        if attempts[sub.student_id] < 2:
                            retry.append(sub)
                            continue
                        res = _all_failed("error", "the grading process for this submission "
                                          f"died twice ({type(err).__name__}); tell the instructor")
                        rec = make_record(sub.student_id, res, "", sid_seed, run_id, 0.0)
                        write_json_atomic(results_dir / f"{sub.student_id}.json", rec)
                        records[sub.student_id] = rec
                    bar.update(1)
                    bar.set_postfix_str(sub.student_id)
            rounds += [[s] for s in retry]
    finally:
        bar.close()
        _remove_stale_tmp(results_dir)  # left by a grading process killed mid-write
    for rec in records.values():
        rec["results"] = [r if isinstance(r, TaskResult) else TaskResult.from_dict(r)
                          for r in rec["results"]]
    return records


# ---------------------------------------------------------------- exports and report

def write_grades_csv(path: Path, records: dict[str, dict]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".grades.", suffix=".tmp")
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student_id", "task", "score", "max_score", "status"])
        for sid in sorted(records):
            for r in records[sid]["results"]:
                w.writerow([sid, r.task, f"{r.score:g}", f"{r.max_score:g}", r.status])
    os.replace(tmp, path)


def grade_table(records: dict[str, dict]) -> str:
    """Student x task table: score, then a status letter when not passed."""
    tasks: list[str] = []
    for rec in records.values():
        for r in rec["results"]:
            if r.task not in tasks:
                tasks.append(r.task)
    heads = [t.replace("task", "") for t in tasks]
    width = max([len("student")] + [len(s) for s in records])
    cols = [max(len(h), 6) for h in heads]
    lines = [f"{'student':<{width}}  " + "  ".join(f"{h:>{c}}" for h, c in zip(heads, cols))
             + "   total"]
    for sid in sorted(records):
        by = {r.task: r for r in records[sid]["results"]}
        cells = []
        for t, c in zip(tasks, cols):
            r = by.get(t)
            cells.append(f"{'':>{c}}" if r is None else f"{f'{r.score:g}{ABBREV[r.status]}':>{c}}")
        tot = sum(r.score for r in by.values())
        mx = sum(r.max_score for r in by.values())
        lines.append(f"{sid:<{width}}  " + "  ".join(cells) + f"   {tot:g}/{mx:g}")
    lines.append("legend: F failed, E error, T timeout, M memory, - missing, R rejected, P pending manual grading")
    return "\n".join(lines)


def layer_report() -> str:
    """The sandbox's isolation layers on this machine, missing ones said loudly."""
    try:
        from grading import sandbox
        layers = sandbox.detect_layers()
    except Exception as err:  # the report must not stop a run
        return f"sandbox layers: UNKNOWN ({type(err).__name__}: {err})"
    lines = ["sandbox layers:"]
    missing = []
    for name, (active, why) in layers.items():
        lines.append(f"  [{'on ' if active else 'OFF'}] {name}: {why}")
        if not active:
            missing.append(name)
    if missing:
        lines.append("WARNING: isolation layers MISSING on this machine: " + ", ".join(missing)
                     + ". Student code is less contained; grade on a Linux machine with "
                       "user/mount namespaces (run as root or enable unprivileged userns).")
    return "\n".join(lines)


SANDBOX_MODES = ("auto", "bwrap", "unshare", "none", "unsafe")


def use_sandbox(mode: str, protect=()) -> str:
    """Select the sandbox backend; "" when student code may run, else why not (for stderr).

    Without namespaces the throw-away uid sees every file other users may read: the
    reference solution, the hidden tests, the submissions and OUT are closed to others
    (chmod o-rwx) first, and the change is printed.
    """
    from grading import sandbox
    sandbox.set_mode(mode)
    try:
        backend = sandbox.check_mode()
    except sandbox.SandboxRefused as err:
        return f"error: {err}"
    for uid in sandbox.reap_orphans():
        print(f"sandbox: killed the processes a killed grader left running as uid {uid}",
              flush=True)
    if backend in ("none", "unsafe"):
        repo = Path(__file__).resolve().parent.parent
        secrets = [repo / d for d in ("cs_layers", "grading", "assignments", "tests", ".git")]
        for p in sandbox.close_to_others(secrets + [Path(p) for p in protect]):
            print(f"sandbox {backend}: closed {p} to other users (chmod o-rwx)", flush=True)
        if not sandbox.interpreter_reachable():
            print(f"WARNING: sandbox {backend}: {os.path.realpath(sys.executable)} sits below a "
                  "folder other users cannot enter; student code cannot start Python again "
                  "(notebook kernels fail). Use a Python installed outside /root (e.g. /usr or "
                  "/opt) for grading without namespaces", flush=True)
    return ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading autograde",
                                     description="Grade a folder of submissions with hidden tests.")
    parser.add_argument("submissions", type=Path,
                        help="folder of <student_id>/ folders and/or <student_id>.zip files")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2)),
                        help="students graded in parallel (default: CPU count)")
    parser.add_argument("--resume", action="store_true",
                        help="continue a run in OUT: keep finished students, grade the rest")
    parser.add_argument("--seed-file", type=Path, default=None,
                        help="file with the secret seed (default: fresh random, kept in OUT)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--timeout-per-submission", type=float, default=DEFAULT_TIMEOUT_S,
                        metavar="SECONDS",
                        help="wall-clock budget of one student, everything graded included "
                             f"(default {DEFAULT_TIMEOUT_S:g}); what is unfinished is 'timeout'")
    parser.add_argument("--sandbox", choices=SANDBOX_MODES, default="auto",
                        help="isolation backend for student code: auto (best available), bwrap, "
                             "unshare, none (throw-away uid + rlimits, no namespaces; needs root)"
                             ", unsafe (may run as the grader's own user; a throw-away machine "
                             "only). See the README's sandbox table")
    args = parser.parse_args(argv)

    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder; pass the folder holding the submissions")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if not args.timeout_per_submission > 0:
        parser.error("--timeout-per-submission must be a positive number of seconds")
    out = args.out
    results_dir = out / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    if not args.resume and any(results_dir.glob("*.json")):
        parser.error(f"{results_dir} already holds results; pass --resume to continue that run, "
                     "or choose a new --out")
    refused = use_sandbox(args.sandbox, protect=[out, args.submissions])
    if refused:
        print(refused, file=sys.stderr)
        return 2
    print(layer_report(), flush=True)
    _remove_stale_tmp(results_dir)

    subs, dups, warnings = discover(args.submissions)
    for w in warnings:
        print(f"WARNING: {w}", flush=True)
    seed = load_seed(out, args.seed_file, args.resume)
    sid_seed = seed_id(seed)

    records: dict[str, dict] = {}
    todo = []
    for sub in subs:
        rec = read_record(results_dir / f"{sub.student_id}.json", sid_seed) if args.resume else None
        if rec is not None:
            records[sub.student_id] = rec
        else:
            todo.append(sub)
    if args.resume:
        print(f"resume: {len(records)} student(s) already graded, {len(todo)} to grade", flush=True)
    suite = None
    if todo:
        t0 = time.monotonic()
        suite = _hidden_tests().build_suite(seed)
        print(f"hidden suite built in {time.monotonic() - t0:.1f} s", flush=True)
    for sid in dups:  # both <id>/ and <id>.zip: refuse to guess which one counts
        todo = [s for s in todo if s.student_id != sid]
        res = _all_failed("rejected", f"both {sid}/ and {sid}.zip were submitted; keep only one")
        rec = make_record(sid, res, "", sid_seed, "dup", 0.0)
        write_json_atomic(results_dir / f"{sid}.json", rec)
        records[sid] = rec | {"results": res}
    t0 = time.monotonic()
    records.update(grade_all(todo, suite, results_dir=results_dir, sid_seed=sid_seed,
                             jobs=args.jobs, progress=not args.quiet,
                             timeout=args.timeout_per_submission))
    elapsed = time.monotonic() - t0

    write_grades_csv(out / "grades.csv", records)
    for sid, rec in records.items():
        feedback.write_feedback(out / "feedback" / f"{sid}.html", sid, rec["results"],
                                note=rec.get("note", ""))
    print(grade_table(records))
    print(f"graded {len(todo)} submission(s) in {elapsed:.1f} s with --jobs {args.jobs}; "
          f"wrote {out / 'grades.csv'}, {out / 'feedback'}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
