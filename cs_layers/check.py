"""Self-check: run the public tests of some tasks and print one line per task.

From a terminal, in the folder that holds cs_layers/:
    python -m cs_layers.check                 # every task
    python -m cs_layers.check task2_3 task2_4
(the same tests as `pytest -m "task2_3 or task2_4"`). From a notebook:
    from cs_layers.check import run; run("task2_3")

Each task is reported as passed, FAILED (with the first failure: for numeric
checks the worst element, the relative error against the tolerance and a hint),
not implemented yet (a stub still raises NotImplementedError), or needs an
earlier task first. task2_0 (conv geometry) is checked with any later task, since
the given code of those runs on its functions, and a later task that fails while
task2_0 fails says so. Once one test of a task hits a NotImplementedError, the
other tests of that task are not run (so a fresh release checks in seconds).
The tests run in a fresh Python process, so edits to cs_layers are always
picked up (no kernel restart or autoreload needed).

This module is also the pytest plugin that records the outcomes
(`pytest -p cs_layers.check`, see the pytest_* functions at the bottom).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cs_layers import course

REPORT_ENV = "CS_LAYERS_CHECK_REPORT"
STOP_EARLY_ENV = "CS_LAYERS_CHECK_STOP_EARLY"   # "1": skip the rest of a task after its first NotImplementedError
TASK_ID = re.compile(r"task\d+_\d+")
GEOMETRY_TASK = "task2_0"   # the given code of every later task runs on the student's geometry


def package_root():
    """The folder holding cs_layers/ and tests/public/ (release or instructor tree)."""
    return Path(__file__).resolve().parent.parent


task_key = course.task_key


@dataclass
class TaskStatus:
    task: str
    status: str          # "passed", "FAILED", "not implemented yet", "no public tests", "error"
    passed: int = 0
    total: int = 0
    detail: str = ""

    @property
    def ok(self):
        return self.status in ("passed", "no public tests")


@dataclass
class CheckResult:
    tasks: dict = field(default_factory=dict)   # task id -> TaskStatus
    returncode: int = 0
    package: str = ""                           # the cs_layers/__init__.py the tests imported
    output: str = ""                            # pytest's own output, for details

    @property
    def ok(self):
        return self.returncode == 0

    def table(self):
        rows = [("task", "status", "tests", "details")]
        for t in sorted(self.tasks, key=task_key):
            s = self.tasks[t]
            rows.append((t, s.status, f"{s.passed}/{s.total}" if s.total else "-", s.detail))
        w0, w1, w2 = (max(len(r[i]) for r in rows) for i in range(3))
        lines = [f"{a:<{w0}}  {b:<{w1}}  {c:>{w2}}  {d}".rstrip() for a, b, c, d in rows]
        if not self.ok:
            lines.append("For the full traceback of a task run: pytest -m <task> (e.g. pytest -m "
                         f"{next((t for t, s in self.tasks.items() if not s.ok), 'task2_1')}).")
        return "\n".join(lines)

    def __repr__(self):
        return f"CheckResult(ok={self.ok}, tasks={ {t: s.status for t, s in self.tasks.items()} })"


def _first_line(message, limit=1000):
    """The first non-empty line, whole: the hint sits at its end. Only a runaway line loses its middle."""
    for line in str(message).splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[:limit // 2 - 3] + " ... " + line[-(limit // 2 - 2):]
    return ""


def known_tasks():
    """The task ids of the course table (cs_layers/course.py), in order."""
    return list(course.TASK_IDS)


def summarise(report, tasks=None):
    """Per-task TaskStatus from the plugin's report (a dict, see pytest_sessionfinish)."""
    tests = report["tests"]
    tasks = sorted(set(tasks) if tasks else {t for r in tests for t in r["tasks"]}, key=task_key)
    out = {}
    for task in tasks:
        mine = [r for r in tests if task in r["tasks"]]
        passed = sum(r["outcome"] in ("passed", "skipped") for r in mine)
        bad = [r for r in mine if r["outcome"] not in ("passed", "skipped")]
        if report["collect_errors"]:
            e = report["collect_errors"][0]
            out[task] = TaskStatus(task, "error", 0, len(mine),
                                   f"could not load the tests ({e['nodeid']}): {_first_line(e['message'])}")
        elif task not in report["registered"]:
            out[task] = TaskStatus(task, "error", 0, 0, "unknown task id; valid ids: "
                                   + ", ".join(sorted(report["registered"], key=task_key)))
        elif not mine:
            out[task] = TaskStatus(task, "no public tests", 0, 0, "checked in the notebook or graded by hand")
        elif not bad:
            out[task] = TaskStatus(task, "passed", passed, len(mine))
        else:
            real = [r for r in bad if not r["not_implemented"]]
            if real:
                r = real[0]
                name = r["nodeid"].split("::")[-1]
                out[task] = TaskStatus(task, "FAILED", passed, len(mine),
                                       f"{name}: {r['exc_type']}: {_first_line(r['message'])}")
            else:
                msg = _first_line(bad[0]["not_implemented"])
                named = TASK_ID.match(msg)
                status = "not implemented yet"
                if named and named.group() != task:
                    status = f"needs {named.group()} first"
                out[task] = TaskStatus(task, status, passed, len(mine), msg)
    return out


def blame_geometry(statuses):
    """When task2_0 fails, say so on every later task that fails: they run on its functions
    (the grader grades them with the reference geometry, so only task2_0 loses points)."""
    geometry = statuses.get(GEOMETRY_TASK)
    if geometry is None or geometry.status != "FAILED":
        return statuses
    for task, s in statuses.items():
        if task != GEOMETRY_TASK and s.status == "FAILED":
            s.detail = (f"task2_0 FAILED too, and this task runs on your geometry functions "
                        f"(output sizes, parameter counts): fix task2_0 first. {s.detail}")
    return statuses


def run_pytest(tasks=(), root=None, extra_args=(), stop_early=False):
    """Run the public tests in a fresh process; return (report, pytest output).

    stop_early: once a test of a task hits NotImplementedError, mark the task's
    remaining tests "not run" instead of running them (what `check` does).

    The report is the plugin's dict: per test its nodeid, task markers, outcome
    and exception, plus collection errors, the registered task ids and the path
    of the cs_layers package the tests imported (so callers can verify it).
    """
    root = Path(root) if root else package_root()
    tests_dir = root / "tests" / "public"
    if not tests_dir.is_dir():
        raise FileNotFoundError(f"no public tests at {tests_dir}; run the check from the assignment "
                                f"folder that holds cs_layers/ and tests/public/.")
    with tempfile.TemporaryDirectory(prefix="cs_layers_check_") as tmp:
        report_path = Path(tmp) / "report.json"
        env = dict(os.environ, **{REPORT_ENV: str(report_path), STOP_EARLY_ENV: "1" if stop_early else "0"})
        env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in [env.get("PYTHONPATH")] if p])
        cmd = [sys.executable, "-m", "pytest", str(tests_dir), "-p", "cs_layers.check",
               "-p", "no:cacheprovider", "-q", "--tb=short", "-rN", *extra_args]
        if tasks:
            cmd += ["-m", " or ".join(tasks)]
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
        output = proc.stdout + proc.stderr
        if not report_path.is_file():
            raise RuntimeError(f"pytest could not run the public tests (exit {proc.returncode}); "
                               f"its output ends with:\n{output[-3000:]}\n"
                               f"Fix the error it names (often a syntax error in cs_layers) and check again.")
        return json.loads(report_path.read_text(encoding="utf-8")), output


def run(*tasks, verbose=False, quiet=False, root=None):
    """Run the public tests of `tasks` (all when none given); print and return a CheckResult.

    Inputs:
    - tasks: task ids such as "task2_3" (strings, or one list of them)
    - verbose: also print pytest's own output
    - quiet: print nothing (the result still holds the table: result.table())
    - root: folder holding cs_layers/ and tests/public/ (default: next to this package)
    """
    if len(tasks) == 1 and isinstance(tasks[0], (list, tuple)):
        tasks = tuple(tasks[0])
    valid = known_tasks()
    bad = [t for t in tasks if not isinstance(t, str) or not TASK_ID.fullmatch(t) or (valid and t not in valid)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a task id of this assignment; valid ids: "
                         f"{', '.join(valid) or 'see docs/tasks.md'}.")
    # task2_0 is checked too when a later one is asked for: they run on its functions.
    root_dir = Path(root) if root else package_root()
    try:   # only where the public tests register task2_0 (pytest refuses an unknown -m name)
        registered = f'"{GEOMETRY_TASK}:' in (root_dir / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        registered = False
    extra = [GEOMETRY_TASK] if tasks and GEOMETRY_TASK not in tasks and registered else []
    report, output = run_pytest(tuple(tasks) + tuple(extra), root, stop_early=True)
    statuses = blame_geometry(summarise(report, tuple(tasks) + tuple(extra)))
    if extra and statuses[GEOMETRY_TASK].status not in ("FAILED", "not implemented yet"):
        del statuses[GEOMETRY_TASK]   # shown only when it explains a failure
    asked = [s for t, s in statuses.items() if t not in extra]
    code = 0 if asked and all(s.ok for s in asked) else 1
    if any(s.detail.startswith("unknown task id") for s in statuses.values()):
        code = 2
    result = CheckResult(statuses, code, report.get("package", ""), output)
    if verbose:
        print(output)
    if not quiet:
        print(result.table())
    return result


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(prog="python -m cs_layers.check",
                                     description="Run the public self-check tests, one line per task.")
    parser.add_argument("tasks", nargs="*", help="task ids such as task2_3 (default: all)")
    parser.add_argument("-v", "--verbose", action="store_true", help="also show pytest's output")
    args = parser.parse_args(argv)
    try:
        return run(*args.tasks, verbose=args.verbose).returncode
    except ValueError as e:  # not a task id: usage
        print(f"check: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, RuntimeError) as e:  # the tests could not run: the message says why
        print(f"check: {e}", file=sys.stderr)
        return 1


# ---- pytest plugin: active only when pytest runs with -p cs_layers.check ----
_state = {"tests": {}, "collect_errors": [], "tasks": {}, "stubbed": {}}   # stubbed: task -> message


def _not_implemented(exc):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, NotImplementedError):
            return str(exc) or "NotImplementedError"
        exc = exc.__cause__ or exc.__context__
    return ""


def pytest_configure(config):
    _state["registered"] = sorted({TASK_ID.match(m).group() for m in config.getini("markers")
                                   if TASK_ID.match(m)}, key=task_key)


def pytest_collection_modifyitems(items):
    for item in items:
        _state["tasks"][item.nodeid] = sorted({m.name for m in item.iter_markers()
                                               if TASK_ID.fullmatch(m.name)}, key=task_key)


def pytest_collectreport(report):
    if report.failed:
        _state["collect_errors"].append({"nodeid": report.nodeid, "message": str(report.longrepr)[-2000:]})


def pytest_runtest_setup(item):
    """Skip a test whose every task already hit a NotImplementedError: it would only hit it again."""
    tasks = _state["tasks"].get(item.nodeid, [])
    if os.environ.get(STOP_EARLY_ENV) == "1" and tasks and all(t in _state["stubbed"] for t in tasks):
        message = _state["stubbed"][tasks[0]]
        _state["tests"][item.nodeid] = {
            "nodeid": item.nodeid, "tasks": tasks, "outcome": "not run", "when": "setup",
            "exc_type": "NotImplementedError", "message": message, "not_implemented": message}
        import pytest
        pytest.skip(f"not run: {message}")


def pytest_runtest_makereport(item, call):
    rec = _state["tests"].setdefault(item.nodeid, {
        "nodeid": item.nodeid, "tasks": _state["tasks"].get(item.nodeid, []), "outcome": "passed",
        "when": "", "exc_type": "", "message": "", "not_implemented": ""})
    excinfo = call.excinfo
    if excinfo is None or rec["outcome"] != "passed":
        return None
    if excinfo.typename in ("Skipped", "XFailed"):
        rec["outcome"] = "skipped"
        return None
    rec.update(outcome="failed" if call.when == "call" else "error", when=call.when,
               exc_type=excinfo.typename, message=str(excinfo.value)[:4000],
               not_implemented=_not_implemented(excinfo.value))
    if rec["not_implemented"]:
        for task in rec["tasks"]:
            _state["stubbed"].setdefault(task, rec["not_implemented"])
    return None


def pytest_sessionfinish(session):
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    import cs_layers
    report = {"tests": list(_state["tests"].values()), "collect_errors": _state["collect_errors"],
              "registered": _state.get("registered", []), "package": cs_layers.__file__}
    Path(path).write_text(json.dumps(report), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
