"""A fresh student machine, end to end, from the release folder (issue 14, tests and evidence).

tests/student_path.py walks the path once per session (install as the README says,
`check` on the stubs, both notebooks executed with the reference solutions, `submit`,
the zip autograded); these tests check each step. tests/test_notebooks.py and
tests/test_notebook_grading.py inspect the same run's executed and graded notebooks.
"""
import csv
import json
import re

import pytest

from session import student_walk
from student_path import NOTEBOOKS

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("student")]  # one worker walks it (pytest -n)


@pytest.fixture
def walk(tmp_path_factory):
    return student_walk(tmp_path_factory)


def test_check_on_the_stubs_stops_every_task_at_its_stub(walk):
    assert walk.check_stdout is not None, f"the walk stopped before `check`: {walk.failure}"
    rows = [line.split()[:2] for line in walk.check_stdout.splitlines() if re.match(r"task\d+_\d+ ", line)]
    assert rows and all(s in ("not", "needs", "no") for _, s in rows), walk.check_stdout


def test_saved_notebooks_hold_no_progress_bar_and_no_figure_twice(walk):
    assert set(walk.executed) == set(NOTEBOOKS), f"the notebooks did not all execute: {walk.failure}"
    problems = [p for name in NOTEBOOKS for p in walk.executed[name]]
    assert not problems, "\n".join(problems)


def test_student_path_from_the_release(walk):
    assert walk.failure is None, walk.failure
    assert "FAILED" not in walk.submit_stdout, walk.submit_stdout
    with open(walk.grades_out / "grades.csv", newline="") as f:
        grades = list(csv.DictReader(f))
    not_full = [g for g in grades if g["status"] not in ("passed", "pending")]
    assert grades and not not_full, json.dumps(not_full, indent=1)

    print("\nstudent path from the release, seconds:")
    for step, secs in walk.times.items():
        print(f"  {step:<28} {secs:7.1f}")
    print(f"  {'total':<28} {sum(walk.times.values()):7.1f}")
