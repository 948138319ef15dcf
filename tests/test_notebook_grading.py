"""Notebook autograding (grading/notebooks.py) and the course gradebook (grading/gradebook.py).

Fast: the cell checks (deleted / edited / duplicated cells, corrupt JSON) and the per-task
aggregation on small hand-made inputs. Slow (real nbgrader, in the sandbox): a rejected
and a corrupt notebook, a stub submission that must not reach the instructor's code, and a
timeout. The correct notebook pair, with full points and the gradebook, is graded by the
student path (tests/test_student_path.py).
"""
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbgrader import utils

from cs_layers import notebook_cells
from grading import gradebook, notebooks
from grading.notebooks import Cell, Outcome
from grading.sandbox import Limits, detect_layers

from session import seed_template

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "assignments" / "convnets"


# ---------------------------------------------------------------- fast: cell checks

def _tiny():
    nb = nbformat.v4.new_notebook()
    def meta(gid, **kw):
        return {"nbgrader": {"grade_id": gid, "schema_version": 3, "task": False, **kw}}

    nb.cells = [
        nbformat.v4.new_code_cell("x = 1", metadata=meta("task9_1_sol", grade=False, solution=True, locked=False)),
        nbformat.v4.new_code_cell("assert x == 1", metadata=meta("task9_1", grade=True, solution=False,
                                                                 locked=True, points=2)),
        nbformat.v4.new_markdown_cell("answer", metadata=meta("task9_2_q", grade=True, solution=True,
                                                              locked=False, points=3)),
    ]
    return nb


def _table(nb):
    return {c.metadata.nbgrader["grade_id"]: Cell(
        c.metadata.nbgrader["grade_id"], float(c.metadata.nbgrader.get("points", 0)),
        utils.is_grade(c), utils.is_solution(c), utils.is_locked(c), utils.compute_checksum(c),
        notebook_cells.entry(c))
        for c in nb.cells}


def _raw(nb):
    return nbformat.writes(nb).encode()


def test_check_accepts_the_release_and_a_student_answer():
    nb = _tiny()
    table = _table(nb)
    nb.cells[0].source = "x = 0 + 1  # my solution"
    nb.cells[2].source = "my written answer"
    nb.cells.append(nbformat.v4.new_code_cell("print('scratch work')"))  # new cells are fine
    assert notebooks.check_notebook(_raw(nb), table) is None


def test_check_rejects_a_deleted_grade_cell_by_name():
    nb = _tiny()
    table = _table(nb)
    del nb.cells[1]
    why = notebooks.check_notebook(_raw(nb), table)
    assert why and "task9_1" in why and "deleted" in why


def test_check_rejects_an_edited_grade_cell_and_changed_points():
    nb = _tiny()
    table = _table(nb)
    nb.cells[1].source = "assert True"
    assert "task9_1 was edited" in notebooks.check_notebook(_raw(nb), table)
    nb = _tiny()
    nb.cells[1].metadata.nbgrader["points"] = 200
    assert "task9_1 was edited" in notebooks.check_notebook(_raw(nb), table)


def test_check_rejects_a_duplicated_cell_and_corrupt_json():
    nb = _tiny()
    table = _table(nb)
    nb.cells.append(nbformat.from_dict(json.loads(json.dumps(nb.cells[1]))))
    assert "appears twice" in notebooks.check_notebook(_raw(nb), table)
    assert "does not parse" in notebooks.check_notebook(b'{"cells": [ {"cell_type": "co', table)
    assert "does not parse" in notebooks.check_notebook(b"\xff\xfe not utf-8", table)


# ---------------------------------------------------------------- fast: aggregation

CELLS = {
    "task2_4_forward": Cell("task2_4_forward", 1.0, True, False, True, "a"),
    "task2_4_backward": Cell("task2_4_backward", 2.0, True, False, True, "b"),
    "task3_1_shape": Cell("task3_1_shape", 1.0, True, False, True, "f"),
    "task3_1_train": Cell("task3_1_train", 2.0, True, False, True, "g"),
    "task2_9": Cell("task2_9", 5.0, True, False, True, "c"),
    "task2_12_q1": Cell("task2_12_q1", 2.0, True, True, False, "d"),
    "task2_9_train": Cell("task2_9_train", 0.0, False, True, False, "e"),
}


def test_results_per_task_partial_and_pending():
    out = Outcome("ConvolutionalNetworks", "ok",
                  scores={"task2_4_forward": 1.0, "task2_4_backward": 0.5, "task2_9": 5.0,
                          "task2_12_q1": None, "task3_1_shape": 1.0, "task3_1_train": 0.5})
    res = {r.task: r for r in notebooks.task_results(out, CELLS)}
    # task2_9: graded from the model
    assert set(res) == {"nb:task2_4", "nb:task3_1", "nb:task2_12:manual"}
    # the PyTorch tasks are graded in the sandbox (grading.torch_cases): advisory here too
    assert (res["nb:task3_1"].score, res["nb:task3_1"].max_score) == (0.0, 0.0)
    assert res["nb:task3_1"].status == "failed" and "task3_1_train" in res["nb:task3_1"].message
    # a task the hidden tests grade: reported, but worth nothing in the notebook
    assert (res["nb:task2_4"].score, res["nb:task2_4"].max_score) == (0.0, 0.0)
    assert res["nb:task2_4"].status == "failed" and "task2_4_backward" in res["nb:task2_4"].message
    manual = res["nb:task2_12:manual"]  # 0 of its points until graded by hand
    assert (manual.score, manual.max_score, manual.status) == (0.0, 2.0, "pending")
    assert "awaiting manual grading" in manual.message


def test_results_full_points_pass_and_failures_are_not_plain_zeros():
    out = Outcome("ConvolutionalNetworks", "ok", scores={"task3_1_shape": 1.0, "task3_1_train": 2.0})
    (r,) = [r for r in notebooks.task_results(out, CELLS) if r.task == "nb:task3_1"]
    assert r.status == "passed" and r.score == r.max_score == 0.0 and "advisory, 0 points" in r.message
    for status in ("timeout", "memory", "error", "rejected", "missing"):
        res = notebooks.task_results(Outcome("ConvolutionalNetworks", status, "why"), CELLS)
        assert res and all(r.status == status and r.score == 0 for r in res)


def test_missing_notebooks_need_no_nbgrader_run(tmp_path):
    (tmp_path / "staging" / "cs_layers").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    res = notebooks.grade_notebooks(tmp_path / "staging", "bob", workdir=tmp_path / "work")
    assert res and all(r.status == "missing" and r.score == 0 for r in res)
    assert all(r.max_score == 0 for r in res if r.task.startswith("nb:task3_") and "manual" not in r.task)
    assert {r.task for r in res} >= {"nb:task2_3", "nb:task3_5", "nb:task2_12:manual"}


class FakeNbgrader(notebooks.Nbgrader):
    """No nbgrader: the template of the source notebooks, nothing staged, every check cell
    scored in full; run() answers status_of(notebooks of the run) and records the run."""

    def __init__(self, template, status_of):
        self._template, self.status_of, self.runs = template, status_of, []

    def template(self, cache_dir):
        return self._template

    def stage(self, course, template, staging, sid, nbs):
        pass

    def run(self, course, sid, nbs, limits, fast):
        from grading.sandbox import RunResult

        self.runs.append((tuple(nbs), limits.wall_s))
        status = self.status_of(tuple(nbs))
        return RunResult(0 if status == "ok" else 1, status, "", 0.1, ())

    def read_scores(self, course, sid, nb, cells, course_id):
        return {gid: spec.points for gid, spec in cells.items() if spec.grade and not spec.manual}, ""


def _fake_runs(tmp_path, status_of):
    """grade_notebooks with the nbgrader runs faked: status_of(notebooks of the run) -> status."""
    st = _staging(tmp_path / "st")
    cells = {nb: notebooks.read_cells(SRC / f"{nb}.ipynb") for nb in notebooks.NOTEBOOKS}
    fake = FakeNbgrader(notebooks.Template(tmp_path / "t", cells, "course"), status_of)
    (tmp_path / "w").mkdir()
    res = notebooks.grade_notebooks(st, "zoe", workdir=tmp_path / "w", limits=Limits(wall_s=100),
                                    nbgrader=fake)
    return fake.runs, {r.task: r for r in res}


def test_both_notebooks_share_one_nbgrader_run(tmp_path):
    runs, res = _fake_runs(tmp_path, lambda nbs: "ok")
    assert runs == [(notebooks.NOTEBOOKS, 200)]  # one start-up, each notebook's wall time
    assert res["nb:task2_3"].status == res["nb:task3_1"].status == "passed"


def test_a_failed_shared_run_grades_each_notebook_alone(tmp_path):
    """One crashing notebook is not blamed on the other: each is run again on its own."""
    runs, res = _fake_runs(tmp_path,
                           lambda nbs: "crash" if "PyTorch" in nbs else "ok")
    assert runs == [(notebooks.NOTEBOOKS, 200)] + [((nb,), 100) for nb in notebooks.NOTEBOOKS]
    assert res["nb:task2_3"].status == "passed"
    assert res["nb:task3_1"].status == "error" and "PyTorch.ipynb nbgrader stopped" in res["nb:task3_1"].message


# ---------------------------------------------------------------- slow: real nbgrader runs

@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """OUT folder with the template (built once per session)."""
    out = tmp_path_factory.mktemp("out")
    seed_template(tmp_path_factory, out)
    notebooks.get_template(out / ".nbgrader_template")
    return out


def _staging(dest: Path, *, stubs=False, notebooks_from=SRC) -> Path:
    from grading import markers

    (dest / "cs_layers").mkdir(parents=True)
    for f in sorted((ROOT / "cs_layers").glob("*.py")):
        text = f.read_text(encoding="utf-8")
        if stubs:
            text, _ = markers.strip_solutions(text, f"cs_layers/{f.name}")
        (dest / "cs_layers" / f.name).write_text(text, encoding="utf-8")
    (dest / "assignments" / "convnets").mkdir(parents=True)
    for name in notebooks.NOTEBOOKS:
        if notebooks_from is not None:
            shutil.copy2(notebooks_from / f"{name}.ipynb", dest / "assignments" / "convnets")
    return dest


def _edit(path: Path, edit) -> None:
    nb = nbformat.read(path, as_version=4)
    edit(nb)
    nbformat.write(nb, path)


@pytest.mark.slow
def test_deleted_grade_cell_and_corrupt_notebook_are_rejected(course, tmp_path):
    st = _staging(tmp_path / "st")
    cnn = st / "assignments" / "convnets" / "ConvolutionalNetworks.ipynb"
    _edit(cnn, lambda nb: nb.cells.remove(
        next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "task2_3")))
    (st / "assignments" / "convnets" / "PyTorch.ipynb").write_text('{"cells": [{"cell_ty')
    (tmp_path / "w").mkdir()
    res = notebooks.grade_notebooks(st, "carol", workdir=tmp_path / "w", course_out=course)
    conv = [r for r in res if r.task.startswith("nb:task2_")]
    torch_ = [r for r in res if r.task.startswith("nb:task3_")]
    assert conv and all(r.status == "rejected" and "task2_3" in r.message for r in conv)
    assert torch_ and all(r.status == "rejected" and "does not parse" in r.message for r in torch_)
    grades = gradebook.student_grades(course, "carol", notebooks.get_template(
        course / ".nbgrader_template").course_id)
    # task2_3's check is advisory (the hidden tests grade task2_3): 0 of 0, nothing to flag
    assert grades[("ConvolutionalNetworks", "task2_3")][0] == 0.0
    assert grades[("ConvolutionalNetworks", "task2_3")][2:] == (0.0, False)
    # a cell with points in the gradebook is flagged: a rejected notebook is not a plain zero
    assert grades[("ConvolutionalNetworks", "task2_12_q1")][0] == 0.0
    assert grades[("ConvolutionalNetworks", "task2_12_q1")][3] is True
    # the PyTorch checks are advisory too (task3_* are graded in the sandbox); its write-up keeps points
    assert grades[("PyTorch", "task3_1_shape")][2:] == (0.0, False)
    assert grades[("PyTorch", "task3_5_writeup")][3] is True


PROBE = """
import json, os, socket
found = {}
for p in ["REPO/grading/hidden_tests/module_cases.py", "REPO/cs_layers/layers.py",
          "REPO/.git/config", "/root/.bashrc"]:
    try:
        found[p] = open(p).read()[:50]
    except OSError as e:
        found[p] = None
try:
    open("/tmp/x_nbgrading_probe", "w").write("escaped")
    found["wrote_tmp"] = True
except OSError:
    found["wrote_tmp"] = False
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2); found["net"] = True
except OSError:
    found["net"] = False
json.dump(found, open("probe.json", "w"))
""".replace("REPO", str(ROOT))  # the instructor's checkout, wherever this clone is


FIGURE = "plt.plot([1, 2])\nplt.title('probe figure')\nplt.show()"


@pytest.mark.slow
def test_stub_submission_cannot_reach_the_instructor_code(course, tmp_path):
    """Release stubs + the notebooks: module checks fail, and the kernel sees nothing outside."""
    st = _staging(tmp_path / "st", stubs=True)
    (st / "assignments" / "convnets" / "PyTorch.ipynb").unlink()
    def add_cells(nb):
        nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE))
        setup = next(i for i, c in enumerate(nb.cells) if "%matplotlib inline" in c.source)
        nb.cells.insert(setup + 1, nbformat.v4.new_code_cell(FIGURE))

    _edit(st / "assignments" / "convnets" / "ConvolutionalNetworks.ipynb", add_cells)
    (tmp_path / "w").mkdir()
    res = {r.task: r for r in notebooks.grade_notebooks(st, "mallory", workdir=tmp_path / "w",
                                                         course_out=course)}
    graded = nbformat.read(tmp_path / "w" / "ConvolutionalNetworks" / "autograded" / "mallory"
                           / "convnets" / "ConvolutionalNetworks.ipynb", as_version=4)
    shown = [o for c in graded.cells if c.source == FIGURE for o in c.outputs]
    # the grading kernel records a figure as its text stand-in (notebooks.KERNEL_CONFIG)
    assert shown and all("image/png" not in o.get("data", {}) for o in shown), shown
    assert any(o.get("data", {}).get("text/plain", "").startswith("<Figure") for o in shown), shown
    for task in ("nb:task2_2", "nb:task2_3", "nb:task2_5", "nb:task2_8", "nb:task2_11"):
        assert res[task].status == "failed" and res[task].score == 0, res[task]
    probe = json.loads((tmp_path / "w" / "ConvolutionalNetworks" / "autograded" / "mallory"
                        / "convnets" / "probe.json").read_text())
    assert not Path("/tmp/x_nbgrading_probe").exists()
    assert probe["wrote_tmp"] is False
    if detect_layers()["mount namespace"][0]:
        assert all(probe[p] is None for p in probe if p.startswith("/")), probe
    if detect_layers()["network namespace"][0]:
        assert probe["net"] is False


@pytest.mark.slow
def test_an_endless_cell_is_a_timeout_not_a_zero(course, tmp_path):
    st = _staging(tmp_path / "st", stubs=True)
    (st / "assignments" / "convnets" / "PyTorch.ipynb").unlink()
    _edit(st / "assignments" / "convnets" / "ConvolutionalNetworks.ipynb",
          lambda nb: nb.cells.insert(0, nbformat.v4.new_code_cell("while True:\n    pass")))
    (tmp_path / "w").mkdir()
    limits = Limits(cpu_s=60, wall_s=25, memory_mb=4096, nproc=64, fsize_mb=16, output_kb=8)
    res = notebooks.grade_notebooks(st, "eve", workdir=tmp_path / "w", limits=limits,
                                    course_out=course)
    conv = [r for r in res if r.task.startswith("nb:task2_")]
    assert conv and all(r.status == "timeout" and "time limit" in r.message for r in conv)


@pytest.mark.slow
def test_template_holds_no_solution_line(course):
    """What is copied into a sandbox comes from the template: it must not carry solutions."""
    from grading import markers

    lines = set()
    for nb in notebooks.NOTEBOOKS:
        for cell in nbformat.read(SRC / f"{nb}.ipynb", as_version=4).cells:
            if cell.metadata.get("nbgrader", {}).get("solution") and markers.BEGIN in cell.source:
                inside = cell.source.split(markers.BEGIN)[1].split(markers.END)[0]
                lines |= {ln.strip() for ln in inside.splitlines() if len(ln.strip()) > 25}
    assert lines, "found no solution lines to look for; did the notebooks change format?"
    root = notebooks.get_template(course / ".nbgrader_template").root
    blob = b"".join(f.read_bytes() for f in root.rglob("*") if f.is_file())
    leaked = sorted(ln for ln in lines if ln.encode() in blob)
    assert not leaked, f"solution lines in the grading template: {leaked[:3]}"
