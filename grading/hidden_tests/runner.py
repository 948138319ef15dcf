"""Running a suite on one submission: one sandboxed worker, restarted after a crash or timeout.

Grader side. The worker runs every pending case in one process and leaves, per case and per
module import, a .start file before and a .json status after (grading/worker.py). When it
dies or overruns, the item in flight is the one to blame: its case (or, for an import, every
case of that module) gets the verdict, the rest of a task that timed out or ran out of
memory is skipped, and the worker restarts on what is left. One wall-clock deadline bounds
the whole submission.

    results = grade_module(student_dir, suite, workdir=tmp)   # one TaskResult per task
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from grading import scrub
from grading.hidden_tests import verdicts
from grading.hidden_tests import workdir as work
from grading.hidden_tests.points import TASK_FILES
from grading.results import TaskResult
from grading.sandbox import Limits, run_sandboxed

log = logging.getLogger(__name__)
CASE_WALL_S = 5.0  # one case (or one module import) may take this long
OUT_OF_TIME = "not finished: the time budget of this submission ran out"
MAX_RESTARTS = 12  # worker restarts per student after a crash or timeout
# One worker run: the defaults, and 1 GiB for all its processes together (a correct
# submission's worker stays near 150 MiB).
MODULE_LIMITS = Limits(total_memory_mb=1024)


def watchdog(status_dir: Path, case_wall_s: float, items=None):
    """Kill the worker when one item (a case or an import) runs longer than case_wall_s.

    Trusts nothing the sandbox user can change: not mtimes (a student could keep touching
    a .start file), only the grader's own clock. The clock restarts when an expected item's
    .start file appears for the first time; each item restarts it at most once, so a run
    lasts at most (items + 1) x case_wall_s however the files are played with (and the
    submission's deadline bounds it anyway).
    """
    seen: set[str] = set()
    last = [time.monotonic()]

    def check() -> str | None:
        try:
            names = os.listdir(status_dir)
        except OSError:
            names = []
        for n in names:
            item = n[:-6] if n.endswith(".start") else None
            if item and item not in seen and (items is None or item in items):
                seen.add(item)
                last[0] = time.monotonic()
        if time.monotonic() - last[0] > case_wall_s:
            return f"one case ran longer than {case_wall_s:g} s"
        return None
    return check


def in_flight(status_dir: Path) -> str | None:
    """The item that was started but never finished (a case id or 'import-<module>')."""
    try:
        names = os.listdir(status_dir)
    except OSError:
        return None
    started = {n[:-6] for n in names if n.endswith(".start")}
    done = {n[:-5] for n in names if n.endswith(".json")}
    left = sorted(started - done, key=lambda n: (not n.startswith("import-"), n))
    return left[0] if left else None  # an import in flight is inside the case in flight


def run_worker(workdir: Path, cases: list, limits: Limits, case_wall_s: float):
    """One sandboxed worker run over `cases` (plan.json rewritten, read-only to the worker)."""
    plan = {"site_packages": work.site_packages(), "cases": [c.plan() for c in cases]}
    plan_path = workdir / "plan.json"
    if plan_path.exists():
        os.chmod(plan_path, 0o644)
    plan_path.write_text(json.dumps(plan))
    os.chmod(plan_path, 0o444)
    argv = [sys.executable, "-I", "-S", "-B", str(workdir / "worker.py"), str(workdir)]
    status_dir = workdir / "outputs" / "status"
    items = {c.id for c in cases} | {f"import-{c.module}" for c in cases}
    return run_sandboxed(argv, workdir=workdir, limits=limits, writable=(),
                         watchdog=watchdog(status_dir, case_wall_s, items))


def grade_module(student_dir: Path, suite, *, workdir: Path, limits: Limits | None = None,
                 case_wall_s: float = CASE_WALL_S, deadline: float | None = None) -> list[TaskResult]:
    """Grade one student's cs_layers on the suite; one TaskResult per task of the suite.

    Inputs:
    - student_dir: the unpacked submission (holding cs_layers/*.py, or the .py files)
    - suite: from build_suite (or its .torch part)
    - workdir: an empty folder for this student only (mounted into the sandbox)
    - limits: sandbox limits per worker run (default MODULE_LIMITS)
    - case_wall_s: the most one case or one module import may take
    - deadline: time.monotonic() by which everything must be done (the submission's
      budget); cases not finished by then are "timeout"

    The worker runs all cases in one sandboxed process; after a crash or a
    timeout it restarts from the next unfinished case (skipping the rest of a
    task that timed out or ran out of memory, and every case of a module whose
    import hung), so one bad function costs only its own task.
    """
    limits = limits or MODULE_LIMITS
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    present = work.prepare(workdir, student_dir, suite.cases)
    out_dir, status_dir = workdir / "outputs", workdir / "outputs" / "status"
    found: dict[str, tuple[str, str]] = {}
    for case in suite.cases:
        absent = sorted(m for m in {case.module, TASK_FILES[case.task]} if m not in present)
        if absent:
            found[case.id] = ("missing", f"cs_layers/{absent[0]}.py is not in the submission")
    pending = [c for c in suite.cases if c.id not in found]
    restarts = 0
    while pending:
        if restarts > MAX_RESTARTS:
            for c in pending:
                found[c.id] = ("error", "not run: the worker crashed too many times")
            break
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            for c in pending:
                found[c.id] = ("timeout", OUT_OF_TIME)
            break
        run_limits = limits if left is None or left >= limits.wall_s else \
            dataclasses.replace(limits, wall_s=left)
        run = run_worker(workdir, pending, run_limits, case_wall_s)
        refuse_links(out_dir, status_dir)
        for c in pending:
            st = verdicts.read_status(status_dir / f"{c.id}.json")
            if st is not None:
                found[c.id] = verdicts.check_case(c, out_dir, st)
        pending = [c for c in pending if c.id not in found]
        if not pending:
            break
        if deadline is not None and time.monotonic() >= deadline:
            for c in pending:
                found[c.id] = ("timeout", OUT_OF_TIME)
            break
        item = in_flight(status_dir)
        kind = {"ok": "error", "crash": "error"}.get(run.status, run.status)
        why = {"timeout": "ran past the time limit", "memory": "ran out of memory",
               "error": f"the worker process died ({how_it_ended(run)})"}[kind]
        if run.status == "ok":
            why = "the worker exited without running this case (sys.exit at import?)"
        if kind == "error":  # for the instructor: a crash of an honest submission is a grader bug
            log.warning("the hidden-test worker stopped in %s: %s", item or "its start-up", why)
        if item is not None and item.startswith("import-"):
            mod = item[len("import-"):]
            for c in pending:
                if c.module == mod:
                    found[c.id] = (kind, f"importing cs_layers/{mod}.py: {why}")
        elif item is not None:
            failed = next((c for c in pending if c.id == item), None)
            if failed is not None:
                found[failed.id] = (kind, why)
                if kind in ("timeout", "memory"):
                    for c in pending:
                        if c.task == failed.task and c.id not in found:
                            found[c.id] = (kind, f"not run after an earlier case of this task {why}")
        else:  # died before starting any case (e.g. the interpreter failed to start)
            for c in pending:
                found[c.id] = ("error", f"the worker did not start ({run.status}); "
                               "tell the instructor: " + scrub.text(run.output_tail[-200:]))
        pending = [c for c in pending if c.id not in found]
        clear_status(status_dir)
        restarts += 1
    return [verdicts.task_result(task, [c for c in suite.cases if c.task == task], suite.points[task], found)
            for task in suite.tasks()]


def how_it_ended(run) -> str:
    """The worker's exit code or signal and its last output line, scrubbed (student text)."""
    try:
        code = f"signal {signal.Signals(run.signal).name}" if run.signal else f"exit code {run.returncode}"
    except ValueError:  # not a signal this system names
        code = f"signal {run.signal}"
    lines = [ln for ln in run.output_tail.splitlines() if ln.strip()]
    last = scrub.text(lines[-1], 120) if lines else ""
    return f"{code}; its last output: {last}" if last else f"{code}, no output"


def refuse_links(out_dir: Path, status_dir: Path) -> None:
    """The sandbox user owns outputs/: a status 'folder' that is a link is removed, not followed."""
    if status_dir.is_symlink() or (status_dir.exists() and not status_dir.is_dir()):
        os.unlink(status_dir)
    assert not out_dir.is_symlink(), "outputs/ sits in a root-owned folder and cannot be a link"


def clear_status(status_dir: Path) -> None:
    """Remove the .start and import-* files, which the next run rewrites."""
    for name in os.listdir(status_dir) if status_dir.is_dir() else []:
        if name.startswith("import-") or name.endswith(".start"):
            try:
                os.unlink(status_dir / name)
            except OSError:
                pass
