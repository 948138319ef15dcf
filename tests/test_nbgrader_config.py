"""nbgrader_config.py: autograde must keep the student's cs_layers, never grade the instructor's."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from traitlets.config.loader import PyFileConfigLoader

from grading import markers

ROOT = Path(__file__).resolve().parent.parent
BIN = str(Path(sys.executable).parent)   # nbgrader runs `alembic` from PATH


def _course_config():
    return PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()


def test_exclude_overwriting_lists_exactly_the_files_students_edit():
    c = _course_config()
    assert c.CourseDirectory.source_directory == "assignments"
    listed = c.Autograde.exclude_overwriting["convnets"]
    with_regions = {f"cs_layers/{p.name}" for p in (ROOT / "cs_layers").glob("*.py")
                    if markers.parse_regions(p.read_text(encoding="utf-8"), p.name)}
    assert with_regions, "no cs_layers file has a solution region"
    assert {p for p in listed if p.startswith("cs_layers/")} == with_regions
    assert "convnet_model.npz" in listed
    for p in listed:   # autograde compares os.path.join(source, p) with os.walk paths, string for string
        assert p == os.path.normpath(p) and not p.startswith(("/", "./")), p


def _nbgrader(course, *args):
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


SOLUTION = "def double(x):\n    return 2 * x\n"
STUB = 'def double(x):\n    raise NotImplementedError("task2_1: implement double")\n'


def _course(tmp_path, config_text):
    course = tmp_path
    _write(course / "nbgrader_config.py", config_text)
    src = course / "assignments" / "convnets"
    cell = new_code_cell("from cs_layers.layers import double\nassert double(2) == 4")
    cell.metadata["nbgrader"] = {"grade_id": "task2_1_test", "grade": True, "solution": False,
                                 "locked": True, "points": 1, "schema_version": 3}
    src.mkdir(parents=True)
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(new_notebook(cells=[cell], metadata={"kernelspec": kernel}), str(src / "Tiny.ipynb"))
    _write(src / "cs_layers" / "__init__.py", "")
    _write(src / "cs_layers" / "layers.py", SOLUTION)
    _write(src / "cs_layers" / "shapes.py", "GIVEN = 'instructor'\n")
    _nbgrader(course, "generate_assignment", "convnets", "--force")
    sub = course / "submitted" / "s1" / "convnets"
    shutil.copytree(course / "release" / "convnets", sub)
    _write(sub / "cs_layers" / "layers.py", STUB)
    _write(sub / "cs_layers" / "shapes.py", "GIVEN = 'tampered by the student'\n")
    _nbgrader(course, "autograde", "convnets")
    return course / "autograded" / "s1" / "convnets"


def _score(course):
    out = _nbgrader(course, "export", "--to", "grades.csv")
    rows = (course / "grades.csv").read_text().splitlines()
    header, row = rows[0].split(","), rows[1].split(",")
    return float(row[header.index("score")]), float(row[header.index("max_score")]), out


@pytest.mark.slow
def test_autograde_of_a_stub_keeps_the_students_module_and_is_not_full_marks(tmp_path):
    config = (ROOT / "nbgrader_config.py").read_text()
    graded = _course(tmp_path / "with", config)
    assert (graded / "cs_layers" / "layers.py").read_text() == STUB
    assert (graded / "cs_layers" / "shapes.py").read_text() == "GIVEN = 'instructor'\n"   # given code reset
    score, max_score, _ = _score(tmp_path / "with")
    assert max_score == 1 and score == 0, f"a stub submission scored {score}/{max_score}"

    # Control: without exclude_overwriting nbgrader grades the instructor's module (full marks).
    bare = re.sub(r"c\.Autograde\.exclude_overwriting = \{.*?\n\}\n", "", config, flags=re.S)
    assert "exclude_overwriting = {" not in bare
    graded = _course(tmp_path / "without", bare)
    assert (graded / "cs_layers" / "layers.py").read_text() == SOLUTION
    assert _score(tmp_path / "without")[0] == 1
