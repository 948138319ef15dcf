"""A fresh student machine, end to end, from the release folder.

tests/student_path.py walks the path once per session (install as the README says,
`check` on the stubs, both notebooks executed with the reference solutions, `submit`,
the zip autograded); these tests check each step, and they are where the notebooks'
headless execution and the grading of a correct notebook pair are checked. Every test of
that walk lives in this file; under `make test` the walk is made once for both xdist workers
(tests/session.py).
"""
import csv
import json
import re

import pytest

from grading import gradebook, notebooks

from session import student_walk
from student_path import NOTEBOOKS, STUDENT

pytestmark = pytest.mark.slow


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


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_headless(name, walk):
    """Executed once per session by the student path (tests/student_path.py): the release notebook
    with the solution cells put back (the source notebook, as students get it), nbclient,
    CS_LAYERS_FAST=1, the generated default data, in the release's own venv."""
    assert name in walk.executed, f"{name} did not execute headless: {walk.failure}"
    work = walk.rel / "assignments" / "convnets"
    if name == "ConvolutionalNetworks.ipynb":
        assert (work / "convnet_model.npz").is_file(), "the notebook must save convnet_model.npz (task2_9)"
    if name == "PyTorch.ipynb":
        from cs_layers.torch_nets import load_challenge
        assert load_challenge(work / "challenge_model.pt")[1] == "patterns", \
            "the notebook must save challenge_model.pt with torch_nets.save_challenge (task3_5)"


def test_correct_notebook_pair_gets_its_points_and_the_gradebook(walk):
    """The student path (tests/student_path.py, once per session) submits the release notebooks
    with the reference solutions and autogrades the zip: here, its notebook rows and gradebook."""
    assert walk.grades_out is not None, f"the student path stopped before grading: {walk.failure}"
    course, sid = walk.grades_out, STUDENT
    record = json.loads((course / "results" / f"{sid}.json").read_text())
    res = [r for r in record["results"] if r["task"].startswith("nb:")]
    auto = [r for r in res if not r["task"].endswith(":manual")]
    manual = [r for r in res if r["task"].endswith(":manual")]
    bad = [(r["task"], r["status"], r["score"], r["max_score"], r["message"]) for r in auto
           if r["status"] != "passed" or r["score"] != r["max_score"]]
    assert auto and not bad, f"the solution notebooks lost points: {bad}"
    assert {r["task"] for r in manual} == {"nb:task2_12:manual", "nb:task3_5:manual"}
    template = notebooks.get_template(course / ".nbgrader_template")
    grades = gradebook.student_grades(course, sid, template.course_id)
    for q in ("task2_12_q1", "task2_12_q2", "task2_12_q3"):
        auto_score, manual_score, max_score, needs = grades[("ConvolutionalNetworks", q)]
        assert auto_score is None and manual_score is None and needs and max_score == 2
    assert grades[("PyTorch", "task3_5_writeup")][3] is True
    for nb in notebooks.NOTEBOOKS:
        assert (course / "autograded" / sid / "convnets" / f"{nb}.ipynb").is_file()
