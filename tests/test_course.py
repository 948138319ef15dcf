"""The course table (cs_layers/course.py) is the one list of tasks: every other list matches it."""
import re
from pathlib import Path

import pytest
import tomllib

from cs_layers import course
from grading import hidden_tests, markers

ROOT = Path(__file__).resolve().parent.parent
NON_TASK_MARKERS = ("given", "slow", "gpu")


def _markers():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return cfg["tool"]["pytest"]["ini_options"]["markers"]


def test_pytest_markers_are_the_table_rows_in_order():
    task_markers = [m for m in _markers() if not m.startswith(NON_TASK_MARKERS)]
    assert task_markers == [f"{t.id}: {t.title}" for t in course.TASKS]


def _docs_rows():
    rows = []
    for line in (ROOT / "docs" / "tasks.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| (task\d+_\d+) \| (.*?) \| (.*) \|$", line)
        if m:
            rows.append(m.groups())
    return rows


def _where(task):
    """docs/tasks.md's "where" column, as the table says it."""
    nb = f"{task.notebook} notebook"
    if task.file is None:
        return nb
    where = f"`cs_layers/{task.file}.py`"
    return f"{where} + {nb}" if course.CHECKPOINT in task.graded or course.MANUAL in task.graded else where


def test_docs_task_list_is_the_table():
    rows = _docs_rows()
    assert [r[0] for r in rows] == list(course.TASK_IDS)
    for (tid, where, goal), task in zip(rows, course.TASKS):
        assert where == _where(task), tid
        for name in task.functions:  # each function the student writes is named in its goal
            base = re.sub(r"_(forward|backward)$", "", name.split(".")[0])  # `affine_forward/backward`
            assert re.search(rf"`{re.escape(base)}(_forward|_backward)?[`/(]", goal), (tid, name)


def test_readme_has_no_task_table_of_its_own():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not re.search(r"^\| *task\d+_\d+ *\|", readme, re.M), "README: point to docs/tasks.md instead"


def test_solution_regions_are_the_table_functions():
    found: dict[str, list[tuple[str, str]]] = {}
    for path in sorted((ROOT / "cs_layers").glob("*.py")):
        for line in path.read_text(encoding="utf-8").splitlines():
            m = markers.TASK_LINE.match(line)
            if m:
                found.setdefault(m["task"], []).append((path.stem, m["name"]))
    for task in course.TASKS:
        assert found.pop(task.id, []) == [(task.file, f) for f in task.functions], task.id
    assert not found, f"solution regions of tasks missing from cs_layers/course.py: {sorted(found)}"


def test_grading_tables_are_derived_from_the_course_table():
    auto = [t for t in course.TASKS if course.HIDDEN in t.graded or course.CHECKPOINT in t.graded]
    assert hidden_tests.TASK_POINTS == {t.id: t.points for t in auto}
    assert set(hidden_tests.TASK_FILES) == {t.id for t in course.TASKS if course.HIDDEN in t.graded}
    assert hidden_tests.MODEL_TASK == "task2_9"
    assert set(hidden_tests.MODULE_TASKS) | set(hidden_tests.TORCH_TASKS) | {"task2_9"} == set(hidden_tests.TASK_POINTS)


@pytest.mark.parametrize("task", course.TASKS, ids=lambda t: t.id)
def test_every_row_is_well_formed(task):
    assert re.fullmatch(r"task\d+_\d+", task.id)
    assert task.notebook in course.NOTEBOOKS
    assert task.graded and set(task.graded) <= {course.HIDDEN, course.CHECKPOINT, course.MANUAL}
    assert (task.points > 0) == (course.HIDDEN in task.graded or course.CHECKPOINT in task.graded)
    assert (task.file is None) == (not task.functions)
    if task.file:
        assert (ROOT / "cs_layers" / f"{task.file}.py").is_file()
    assert markers.notebook_for(task.id) == f"{task.notebook}.ipynb"


def test_task_ids_are_in_course_order():
    assert list(course.TASK_IDS) == sorted(course.TASK_IDS, key=course.task_key)


def test_the_course_table_holds_no_solution_and_ships():
    from grading import leakcheck
    assert leakcheck.is_release_module("cs_layers/course.py")
    stubbed, regions = markers.strip_solutions((ROOT / "cs_layers" / "course.py").read_text(encoding="utf-8"))
    assert regions == []
