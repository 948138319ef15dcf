"""Grade a class: `python -m grading autograde SUBMISSIONS --out OUT [--jobs N] [--resume]`.

SUBMISSIONS holds `<student_id>/` folders and/or `<student_id>.zip` files laid out like
the release. For each student, in parallel worker processes:

    unpack (whitelist only) -> grade_module (hidden tests, sandboxed worker)
                            -> grade_torch (task3_*, a sandboxed torch worker; task3_5
                               from the saved challenge weights)
                            -> grade_model (task2_9, the saved checkpoint)
                            -> notebook_results (nbgrader; see its docstring)
    -> OUT/results/<student_id>.json   written atomically as soon as the student is done

then OUT/grades.csv (student_id, task, score, max_score, status), OUT/feedback/<id>.html
and a grade table on stdout. Every student has the same rows with the same max_score
(task_layout), scores rounded to two decimals. The secret seed of the hidden inputs is kept
in OUT/.secret_seed (mode 0600) so that `--resume` grades the remaining students on the same
hidden inputs and never regrades a finished one; with nobody left to grade it leaves
grades.csv as it was. Work folders (hidden inputs) live under grading.workspace's base and
never outlive a run: removed at exit, and at the start of the next run after a SIGKILL.

The grader never imports student code, and never crashes on a bad submission: any
exception while grading one student becomes an "error" result with a message.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shlex
import sys
import tempfile
import time
import traceback
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from cs_layers import course
from grading import feedback, workspace
from grading.results import TaskResult
from grading.unpack import MODEL_FILE, Rejected, unpack

STUDENT_ID = course.STUDENT_ID
MODEL_TASK = next(t.id for t in course.TASKS if course.CHECKPOINT in t.graded)
SEED_FILE = ".secret_seed"
RECORD_VERSION = 1
DEFAULT_TIMEOUT_S = 1200.0  # one submission, all parts; a correct one takes about 3 min
OUT_OF_TIME = "not finished: the time budget of this submission ran out"
DISK_PER_SUBMISSION_MB = 512  # the tmpfs holding one student's staging + work folders
ABBREV = {"passed": "", "failed": "F", "error": "E", "timeout": "T", "memory": "M",
          "missing": "-", "rejected": "R", "pending": "P", "graded": ""}
TABLE_WIDTH = 120  # the printed grade table fits a terminal this wide

_SUITE = None  # set in each pool worker (inherited on fork, or by the initializer)
_LOG: list[str] | None = None  # grader tracebacks of the current pool job (printed by the parent)


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


class UsageError(ValueError):
    """The command line asks for something impossible (exit code 2, like argparse's errors)."""


def load_seed(out: Path, seed_file: Path | None, resume: bool) -> bytes:
    """The secret seed of this run, kept in OUT/.secret_seed (mode 0600)."""
    kept = out / SEED_FILE
    seed = None
    if seed_file is not None:
        seed = Path(seed_file).read_bytes()
        if len(seed) < 16:
            raise UsageError(f"--seed-file {seed_file} holds {len(seed)} bytes; use at least 16 "
                             "random bytes (e.g. `head -c 32 /dev/urandom > seed`)")
    if resume and kept.exists():
        old = bytes.fromhex(kept.read_text().strip())
        if seed is not None and seed != old:
            raise UsageError(f"--seed-file differs from the seed kept in {kept}; a resumed run "
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

@dataclass
class Grader:
    """What grades each part of a submission; the real one is default_grader().

    `main(argv, grader=...)` grades with another: the tests pass a small fake one to exercise
    the orchestration (discovery, seed, pool, resume, exports) without the hidden tests.
    """
    task_points: dict  # module task or MODEL_TASK -> points
    torch_tasks: tuple  # graded in the torch worker when the suite has a .torch part
    build_suite: Callable  # (seed) -> suite
    grade_module: Callable  # (staging, suite, *, workdir, limits, deadline) -> [TaskResult]
    grade_model: Callable  # (checkpoint path or None) -> TaskResult
    notebook_layout: Callable  # () -> [(row, max_score)] of the notebook rows
    notebook_results: Callable  # (staging, student_id, *, workdir, out, deadline) -> [TaskResult]


def default_grader() -> Grader:
    """The hidden tests, the checkpoint grader and nbgrader (see notebook_results)."""
    from grading import hidden_tests, notebooks  # imports the instructor's cs_layers (grader side only)
    return Grader(hidden_tests.TASK_POINTS, tuple(hidden_tests.TORCH_TASKS), hidden_tests.build_suite,
                  hidden_tests.grade_module, hidden_tests.grade_model, notebooks.task_layout,
                  notebook_results)


_GRADER: Grader | None = None  # the grader in use (inherited by forked pool workers)


def current_grader() -> Grader:
    """The grader main() was given, else default_grader()."""
    global _GRADER
    if _GRADER is None:
        _GRADER = default_grader()
    return _GRADER


def module_tasks() -> list[str]:
    tasks = [t for t in current_grader().task_points if t != MODEL_TASK]
    return sorted(tasks, key=_task_key)


def _task_key(task: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", task)]


def notebook_layout() -> list[tuple[str, float]]:
    """(row, max_score) of every notebook row, from the source notebooks (no nbgrader run)."""
    return current_grader().notebook_layout()


def task_layout() -> list[tuple[str, float]]:
    """(row, max_score) of every row a student's results have, in order: the same for all.

    A missing notebook, a rejected zip or a crashed grader still gives every row, at 0 of
    its max_score, so every student is graded out of the same total.
    """
    points = current_grader().task_points
    return [(t, float(points[t])) for t in module_tasks() + [MODEL_TASK]] + notebook_layout()


def conform(results: list[TaskResult], layout: list[tuple[str, float]], status: str = "error",
            message: str = "the grader produced no result for this task; tell the instructor"
            ) -> list[TaskResult]:
    """Exactly the layout's rows, in order, with its max_scores; scores rounded to 2 decimals.

    A row without a result gets 0 points and `status`/`message`; a row the layout does not
    know (none, unless the grading code changed) is kept at the end.
    """
    by_task = {r.task: r for r in results}
    out = []
    for task, max_score in layout:
        r = by_task.pop(task, None)
        if r is None:
            out.append(TaskResult(task, 0.0, max_score, status, message))
        else:
            score = round(min(max(r.score, 0.0), max_score), 2)
            out.append(TaskResult(task, score, max_score, r.status, r.message, r.tolerance))
    return out + list(by_task.values())


def _all_failed(status: str, message: str, tasks=None) -> list[TaskResult]:
    layout = task_layout()
    if tasks is not None:
        wanted = set(tasks)
        layout = [(t, m) for t, m in layout if t in wanted]
    return [TaskResult(t, 0.0, m, status, message) for t, m in layout]


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
    grader = current_grader()
    layout = task_layout()
    deadline = time.monotonic() + timeout
    sandbox.reset_usage()  # peaks of this student's runs, kept in the record (bench.grading)
    with workspace.student_folder(sub.student_id) as tmp, \
            sandbox.bounded_folder(tmp, DISK_PER_SUBMISSION_MB):
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
            results = list(grader.grade_module(tmp / "staging", suite, workdir=tmp / "work",
                                               limits=limits, deadline=deadline))
        except Exception as err:  # a grader bug must not cost the class its run
            results = _all_failed("error", _grader_error("module grading", err), module_tasks())
        if getattr(suite, "torch", None) is not None:  # task3_*: in their own torch worker
            try:
                from grading import torch_cases
                results += torch_cases.grade_torch(tmp / "staging", suite, workdir=tmp / "torchwork",
                                                   deadline=deadline)
            except Exception as err:
                results += _all_failed("error", _grader_error("PyTorch grading", err),
                                       grader.torch_tasks)
        results = _complete(results, module_tasks())
        model = tmp / "staging" / MODEL_FILE
        try:
            if time.monotonic() >= deadline:
                results += _all_failed("timeout", OUT_OF_TIME, [MODEL_TASK])
            else:
                results.append(grader.grade_model(model if model.is_file() else None))
        except Exception as err:
            results += _all_failed("error", _grader_error("model grading", err), [MODEL_TASK])
        try:
            (tmp / "nbwork").mkdir()
            results += grader.notebook_results(tmp / "staging", sub.student_id,
                                               workdir=tmp / "nbwork", out=out, deadline=deadline)
        except Exception as err:
            why = _grader_error("notebook grading", err)
            results += [TaskResult(t, 0.0, m, "error", why) for t, m in notebook_layout()]
        return conform(results, layout), note


def _complete(results: list[TaskResult], tasks: list[str]) -> list[TaskResult]:
    """Exactly one result per module task, in order; a missing one is a grader error."""
    by_task = {r.task: r for r in results if isinstance(r, TaskResult)}
    out = []
    for t in tasks:
        out.append(by_task.get(t) or _all_failed(
            "error", "the grader produced no result for this task; tell the instructor", [t])[0])
    return out


def _grader_error(part: str, err: BaseException) -> str:
    text = f"grader error in {part}:\n{traceback.format_exc()}"
    if _LOG is None:
        print(text, file=sys.stderr)
    else:  # inside a pool job: the parent prints it above the progress bar
        _LOG.append(text)
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


class _ListHandler(logging.Handler):
    """Log records of WARNING and above, kept for the parent to print above the progress bar."""

    def __init__(self, sink: list[str], student_id: str):
        super().__init__(logging.WARNING)
        self.sink, self.student_id = sink, student_id

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"{record.levelname.lower()} while grading {self.student_id}: "
                         f"{record.name}: {record.getMessage()}")


def _init_pool(suite) -> None:
    global _SUITE
    workspace.stop_on_signals()  # _stop_pool's SIGTERM unwinds the student's sandbox and folder
    if suite is not None:
        _SUITE = suite


def _stop_pool(pool: cf.ProcessPoolExecutor, grace_s: float = 20.0) -> None:
    """The grader is stopping (Ctrl-C, SIGTERM): no queued student starts, and the grading
    processes are told to stop now (SIGTERM: each unwinds its student's sandbox and work folder,
    writing no record), then killed if they have not gone after grace_s."""
    pool.shutdown(wait=False, cancel_futures=True)
    workers = multiprocessing.active_children()  # the pool's processes: the grader starts no others
    for proc in workers:
        proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in workers:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join()


def _grade_job(sub: Submission, results_dir: Path, sid_seed: str, run_id: str, limits,
               timeout: float = DEFAULT_TIMEOUT_S) -> dict:
    """Pool task: grade one student and write their record atomically; never raises. A stop
    (Ctrl-C, SIGTERM) ends the grading process instead, with no record written unless it was
    complete: the finally blocks the stop came through killed the student's processes and
    removed their folder, and --resume grades the student again."""
    try:
        return _grade_and_record(sub, results_dir, sid_seed, run_id, limits, timeout)
    except workspace.STOPS as stop:  # not handed back to the pool: it would take the next student
        os._exit(workspace.exit_status(stop))


def _grade_and_record(sub: Submission, results_dir: Path, sid_seed: str, run_id: str, limits,
                      timeout: float) -> dict:
    global _LOG
    start = time.monotonic()
    _LOG = []
    handler = _ListHandler(_LOG, sub.student_id)
    logging.getLogger().addHandler(handler)  # library warnings go above the bar too
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            results, note = grade_submission(sub, _SUITE, limits=limits, out=results_dir.parent,
                                             timeout=timeout)
        _LOG += [f"warning while grading {sub.student_id}: {w.category.__name__}: {w.message}"
                 for w in caught]
    except workspace.STOPS:
        raise
    except BaseException as err:  # noqa: BLE001 (SystemExit from a library included)
        results, note = _all_failed("error", _grader_error("grading", err)), ""
    finally:
        logging.getLogger().removeHandler(handler)
    from grading import sandbox
    record = make_record(sub.student_id, results, note, sid_seed, run_id, time.monotonic() - start,
                         sandbox.usage())
    write_json_atomic(results_dir / f"{sub.student_id}.json", record)
    log, _LOG = _LOG, None
    return record | {"grader_log": log}  # not stored: printed by the parent


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
        rec["results"] = conform([TaskResult.from_dict(d) for d in rec["results"]], task_layout())
        return rec
    except (OSError, ValueError, KeyError, TypeError):
        return None


def grade_all(subs: list[Submission], suite, *, results_dir: Path, sid_seed: str, jobs: int,
              limits=None, progress: bool = True,
              timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, dict]:
    """Grade `subs` with `jobs` worker processes; a broken pool is retried once per student."""
    if not subs:
        return {}
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
                try:
                    futures = {pool.submit(_grade_job, s, results_dir, sid_seed, run_id, limits,
                                           timeout): s
                               for s in batch}
                    for fut in cf.as_completed(futures):
                        sub = futures[fut]
                        try:
                            records[sub.student_id] = fut.result()
                            for text in records[sub.student_id].pop("grader_log", []):
                                tqdm.write(text, file=sys.stderr)  # above the bar, not through it
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
                except workspace.STOPS:  # Ctrl-C or SIGTERM: stop the class here, keep what is done
                    _stop_pool(pool)
                    raise
            rounds += [[s] for s in retry]
    finally:
        bar.close()
        _remove_stale_tmp(results_dir)  # left by a grading process killed mid-write
    for rec in records.values():
        rec["results"] = [r if isinstance(r, TaskResult) else TaskResult.from_dict(r)
                          for r in rec["results"]]
    return records


# ---------------------------------------------------------------- exports and report

def fmt(x: float) -> str:
    """A score as printed everywhere: rounded to two decimals, no trailing zeros."""
    return f"{round(x, 2):.2f}".rstrip("0").rstrip(".")


def write_grades_csv(path: Path, records: dict[str, dict]) -> None:
    """grades.csv, written atomically: one row per student and task, scores to 2 decimals."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".grades.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["student_id", "task", "score", "max_score", "status"])
            for sid in sorted(records):
                for r in records[sid]["results"]:
                    w.writerow([sid, r.task, fmt(r.score), fmt(r.max_score), r.status])
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _column(task: str) -> str:
    """The task a row belongs to: task2_3 for task2_3, nb:task2_3 and nb:task2_3:manual."""
    return task.split(":")[1] if task.startswith("nb:") and ":" in task else task


def _cell(rows: list[TaskResult]) -> str:
    """One task's cell: its score over all its rows, and the status letter of a counted row."""
    counted = [r for r in rows if r.max_score > 0] or rows
    bad = [r.status for r in counted if r.status not in ("passed", "graded")]
    return fmt(sum(r.score for r in rows)) + (ABBREV[bad[0]] if bad else "")


def grade_table(records: dict[str, dict], width: int = TABLE_WIDTH) -> str:
    """The class at a glance: student, total, then one column per task, grouped by part.

    A task's column adds up its rows (hidden tests, notebook checks, manual answers). The
    parts (task2_*, task3_*) share a block while they fit in `width` columns; otherwise each
    part gets its own block, every block starting with the student and the total.
    """
    tasks: list[str] = []
    for rec in records.values():
        for r in rec["results"]:
            if _column(r.task) not in tasks:
                tasks.append(_column(r.task))
    groups: dict[str, list[str]] = {}
    for t in sorted(tasks, key=_task_key):
        groups.setdefault(t.split("_")[0] if "_" in t else t, []).append(t)
    sid_w = min(20, max([len("student")] + [len(s) for s in records]))
    rows = {}
    for sid, rec in records.items():
        by: dict[str, list[TaskResult]] = {}
        for r in rec["results"]:
            by.setdefault(_column(r.task), []).append(r)
        total = f"{fmt(sum(r.score for r in rec['results']))}/{fmt(sum(r.max_score for r in rec['results']))}"
        name = sid if len(sid) <= sid_w else sid[: sid_w - 1] + "~"
        rows[sid] = (name, total, {t: _cell(rs) for t, rs in by.items()})
    tot_w = max([len("total")] + [len(v[1]) for v in rows.values()])

    def heads(group, members):
        return [(t, t[len(group):] if t.startswith(group) else t) for t in members]

    def block(parts):
        cols = [(t, h) for g in parts for t, h in heads(g, groups[g])]
        widths = [max([len(h)] + [len(v[2].get(t, "")) for v in rows.values()]) for t, h in cols]
        label = ""
        for g in parts:  # the part's name over its first column
            label += f"{g}:".ljust(sum(w + 1 for (t, _), w in zip(cols, widths)
                                       if t in groups[g]))
        out = [f"{'':<{sid_w}}  {'':>{tot_w}}  {label.rstrip()}",
               f"{'student':<{sid_w}}  {'total':>{tot_w}}  "
               + " ".join(f"{h:>{w}}" for (_, h), w in zip(cols, widths))]
        for sid in sorted(rows):
            name, total, cells = rows[sid]
            out.append(f"{name:<{sid_w}}  {total:>{tot_w}}  "
                       + " ".join(f"{cells.get(t, ''):>{w}}" for (t, _), w in zip(cols, widths)))
        return out

    lines: list[str] = []
    names = list(groups)
    together = block(names) if names else []
    if together and max(len(line) for line in together) <= width:
        lines = together
    else:
        for g in names:
            lines += block([g]) + [""]
        lines = lines[:-1]
    lines.append("legend: F failed, E error, T timeout, M memory, - missing, R rejected, "
                 "P pending manual grading")
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


def main(argv=None, grader: Grader | None = None) -> int:
    """The command line; `grader` grades instead of default_grader() (the tests pass a fake)."""
    global _GRADER
    previous = _GRADER
    _GRADER = grader or previous
    try:
        return _main(argv)
    finally:
        _GRADER = previous


def _main(argv=None) -> int:
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
    if refused:  # the sandbox asked for cannot run here: install it, or choose another
        print(refused, file=sys.stderr)
        return 1
    print(layer_report(), flush=True)
    _remove_stale_tmp(results_dir)
    workspace.stop_on_signals()  # Ctrl-C or a polite kill still removes the work folders
    with workspace.run_folder() as (_, stale):
        for path in stale:
            print(f"removed {path}: work folder of an earlier grading run that was killed",
                  flush=True)
        return _run(args, parser, out, results_dir)


def _run(args, parser, out: Path, results_dir: Path) -> int:
    subs, dups, warnings = discover(args.submissions)
    for w in warnings:
        print(f"WARNING: {w}", flush=True)
    try:
        seed = load_seed(out, args.seed_file, args.resume)
    except UsageError as err:
        parser.error(str(err))
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
        suite = current_grader().build_suite(seed)
        print(f"hidden suite built in {time.monotonic() - t0:.1f} s", flush=True)
    for sid in dups:  # both <id>/ and <id>.zip: refuse to guess which one counts
        todo = [s for s in todo if s.student_id != sid]
        res = _all_failed("rejected", f"both {sid}/ and {sid}.zip were submitted; keep only one")
        rec = make_record(sid, res, "", sid_seed, "dup", 0.0)
        write_json_atomic(results_dir / f"{sid}.json", rec)
        records[sid] = rec | {"results": res}
    if not todo and not dups and (out / "grades.csv").exists():
        print(grade_table(records))
        print(f"nothing to grade: every student in {args.submissions} is graded; "
              f"{out / 'grades.csv'} is left as it was")
        return 0
    t0 = time.monotonic()
    try:
        records.update(grade_all(todo, suite, results_dir=results_dir, sid_seed=sid_seed,
                                 jobs=args.jobs, progress=not args.quiet,
                                 timeout=args.timeout_per_submission))
    except workspace.STOPS as stop:
        return _stopped(stop, args, subs, results_dir, sid_seed)
    elapsed = time.monotonic() - t0

    export(out, records)
    print(grade_table(records))
    print(f"graded {len(todo)} submission(s) in {elapsed:.1f} s with --jobs {args.jobs}; "
          f"wrote {out / 'grades.csv'}, {out / 'feedback'}/")
    return 0


def _stopped(stop: BaseException, args, subs: list[Submission], results_dir: Path,
             sid_seed: str) -> int:
    """Ctrl-C or SIGTERM stopped grade_all: say what is kept and how to go on; 130 or 143."""
    graded = sum(read_record(results_dir / f"{s.student_id}.json", sid_seed) is not None
                 for s in subs)
    what = "Ctrl-C" if isinstance(stop, KeyboardInterrupt) else "SIGTERM"
    print(f"\ngrading stopped by {what}: {graded} of {len(subs)} students are graded, their "
          f"results kept in {results_dir}/; the students being graded when it stopped have no "
          f"result yet, and grades.csv is not updated. Grade the rest with:\n"
          f"    python -m grading autograde {shlex.quote(str(args.submissions))} "
          f"--out {shlex.quote(str(args.out))} --resume",
          file=sys.stderr, flush=True)
    return workspace.exit_status(stop)


def export(out: Path, records: dict[str, dict]) -> list[str]:
    """grades.csv and the feedback pages, with the manual scores graded so far in the gradebook.

    Returns what the manual scores changed, one line per row (see grading.collect_manual).
    """
    from grading import collect_manual
    changes = collect_manual.apply(out, records)
    write_grades_csv(out / "grades.csv", records)
    for sid, rec in records.items():
        feedback.write_feedback(out / "feedback" / f"{sid}.html", sid, rec["results"],
                                note=rec.get("note", ""))
    return changes


if __name__ == "__main__":
    sys.exit(main())
