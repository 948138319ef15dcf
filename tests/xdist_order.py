"""`make test`'s scheduler: whole test files on 2 xdist workers, the longest file first.

Loaded by `pytest -p tests.xdist_order -n 2 --dist loadfile` (the Makefile). xdist's own
loadfile order is by the number of tests in a file, which sends the two longest files (the
student path, 6 tests, and the golden record, 2) last, so one worker ran them alone at the
end. Here the work queue is ordered by COST instead; files not listed are short and keep
xdist's order after the listed ones. The session artefacts (tests/session.py) are made
once whichever worker asks first, so no file has to share a worker with another.

A work unit is a file, except that the corpus file is one unit per --sandbox mode
(its module-scoped `corpus_run` grades the whole corpus once per mode), so the two modes
can run side by side: two grading runs at once never disturb each other
(tests/test_concurrent_runs.py).
"""
from __future__ import annotations

import pytest
from xdist.scheduler import LoadFileScheduling

# Relative cost of the long units, in seconds of one worker on 2 shared cores (`--durations`
# of single files, rounded); only their order matters. Every other file is short.
COST = {
    "tests/test_student_path.py": 900,           # venv install, both notebooks, autograde
    "tests/test_release.py": 600,                # the round trips: the public suite 3 + 13 times
    "tests/test_autograde_corpus.py[auto]": 450,  # trains the corpus models, grades the corpus
    "tests/test_golden.py": 400,                 # release build, example submissions graded
    "tests/test_scrub.py": 300,
    "tests/test_autograde_corpus.py[none]": 300,
    "tests/test_autograde_corpus.py": 150,       # the fake-core tests and the killed run
    "tests/test_nbgrader_config.py": 130,
    "tests/test_course_dir.py": 100,
    "tests/test_torch_grading.py": 100,
    "tests/test_notebooks.py": 100,
    "tests/test_notebook_grading.py": 90,
    "tests/test_public_seeds.py": 80,
    "tests/test_gradescope.py": 60,
    "tests/test_requirements.py": 60,
    "tests/test_check.py": 50,
    "tests/test_solver.py": 40,
}
# A file whose module-scoped fixture is parametrized by --sandbox mode: one unit per mode.
PER_MODE = {"tests/test_autograde_corpus.py": ("auto", "none")}


def scope_of(nodeid: str) -> str:
    """The work unit of a test: its file, or its file and --sandbox mode (PER_MODE)."""
    path = nodeid.split("::", 1)[0]
    mode = nodeid.partition("[")[2].split("-")[0].rstrip("]")
    return f"{path}[{mode}]" if mode in PER_MODE.get(path, ()) else path


class LongestFirst(LoadFileScheduling):
    def _split_scope(self, nodeid: str) -> str:
        return scope_of(nodeid)

    def _assign_work_unit(self, node) -> None:
        # the costliest unit still queued goes first (ties keep xdist's order)
        scope = max(self.workqueue, key=lambda s: COST.get(s, 0.0))
        self.workqueue.move_to_end(scope, last=False)
        super()._assign_work_unit(node)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") == "loadfile":
        return LongestFirst(config, log)
    return None
