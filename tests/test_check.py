"""cs_layers.check: per-task table from the public tests, run in a subprocess."""
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cs_layers import check

ROOT = Path(__file__).resolve().parent.parent

PYPROJECT = """
[tool.pytest.ini_options]
addopts = "--strict-markers"
markers = ["task2_1: a", "task2_2: b", "task2_3: c", "task2_4: d", "task2_9: notebook only"]
"""
MODULE = '''
from cs_layers.gradient_check import check_close

def good(x):
    return x + 1

def wrong(x):
    return x * 2.0

def stub(x):
    raise NotImplementedError("task2_3: implement stub — see the notebook, section task2_3")
'''
TESTS = '''
import numpy as np
import pytest
from cs_layers.gradient_check import check_close
from cs_layers import mod

@pytest.mark.task2_1
def test_good():
    assert mod.good(1) == 2

@pytest.mark.task2_2
def test_wrong():
    check_close(mod.wrong(np.array([1.0, 3.0])), np.array([2.0, 4.0]), 1e-7, name="out",
                hint="Hint: add one, do not double.")

@pytest.mark.task2_3
def test_stub():
    mod.stub(1)

@pytest.mark.task2_4
def test_uses_the_earlier_stub():
    mod.stub(mod.good(1))
'''


@pytest.fixture(autouse=True)
def no_plugin_autoload(monkeypatch):
    """The tiny trees here need no pytest plugin but check's own; loading the installed ones
    (hypothesis imports itself whole) cost about 1.5 CPU s per pytest process `check` starts.
    With every plugin loaded, `check` runs on the release in test_release.py and test_student_path.py."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture
def tree(tmp_path):
    pkg = tmp_path / "cs_layers"
    pkg.mkdir()
    for name in ("__init__.py", "check.py", "gradient_check.py"):
        shutil.copy(ROOT / "cs_layers" / name, pkg / name)
    (pkg / "mod.py").write_text(MODULE)
    (tmp_path / "tests" / "public").mkdir(parents=True)
    (tmp_path / "tests" / "public" / "test_mod.py").write_text(textwrap.dedent(TESTS))
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    return tmp_path


def test_table_reports_pass_fail_stub_and_dependency(tree, capsys):
    result = check.run(root=tree)
    s = result.tasks
    assert s["task2_1"].status == "passed" and (s["task2_1"].passed, s["task2_1"].total) == (1, 1)
    assert s["task2_2"].status == "FAILED"
    assert "relative error" in s["task2_2"].detail and "tolerance 1e-07" in s["task2_2"].detail
    assert "worst element at index (1,)" in s["task2_2"].detail
    assert "Hint: add one" in s["task2_2"].detail
    assert s["task2_3"].status == "not implemented yet"
    assert s["task2_3"].detail.startswith("task2_3: implement stub")
    assert s["task2_4"].status == "needs task2_3 first"
    assert not result.ok and result.returncode == 1
    assert Path(result.package).resolve() == (tree / "cs_layers" / "__init__.py").resolve()
    printed = capsys.readouterr().out
    assert "task2_2  FAILED" in printed and "pytest -m task2_2" in printed


def test_selected_tasks_only_and_exit_zero_when_they_pass(tree, capsys):
    result = check.run("task2_1", root=tree)
    assert list(result.tasks) == ["task2_1"] and result.ok
    result = check.run(["task2_9"], root=tree, quiet=True)
    assert result.tasks["task2_9"].status == "no public tests" and result.ok
    assert capsys.readouterr().out.count("task2_1") == 1


def test_unknown_task_and_bad_ids(tree):
    for bad in ("task9_9", "conv", "task2.3"):
        with pytest.raises(ValueError, match=f"'{re.escape(bad)}' is not a task id of this assignment; "
                                             "valid ids: task2_0, task2_1, task2_2"):
            check.run(bad, root=tree)
    proc = subprocess.run([sys.executable, "-m", "cs_layers.check", "task9_9"], cwd=tree,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "valid ids: task2_0, task2_1" in proc.stderr, proc.stderr


def test_import_error_in_the_module_is_reported_as_error(tree):
    (tree / "cs_layers" / "mod.py").write_text("def good(x:\n")
    result = check.run("task2_1", root=tree, quiet=True)
    assert result.tasks["task2_1"].status == "error"
    assert "could not load the tests" in result.tasks["task2_1"].detail
    assert result.returncode == 1


def test_command_line_exit_codes(tree):
    cmd = [sys.executable, "-m", "cs_layers.check"]
    ok = subprocess.run(cmd + ["task2_1"], cwd=tree, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "task2_1  passed" in ok.stdout
    bad = subprocess.run(cmd + ["task2_2", "task2_1"], cwd=tree, capture_output=True, text=True)
    assert bad.returncode == 1 and "FAILED" in bad.stdout


def test_a_stubbed_task_stops_at_its_first_not_implemented_error(tree):
    (tree / "tests" / "public" / "test_more.py").write_text(textwrap.dedent('''
        import time
        import pytest
        from cs_layers import mod

        @pytest.mark.task2_3
        @pytest.mark.parametrize("i", range(5))
        def test_stub_again(i):
            time.sleep(2)   # never reached: the task already hit its stub in test_mod.py
            mod.stub(i)
        '''))
    result = check.run("task2_3", "task2_4", root=tree, quiet=True)
    assert result.tasks["task2_3"].status == "not implemented yet"
    assert (result.tasks["task2_3"].passed, result.tasks["task2_3"].total) == (0, 6)
    assert result.tasks["task2_4"].status == "needs task2_3 first"
    report, _ = check.run_pytest(["task2_3"], root=tree, stop_early=True)
    outcomes = sorted(r["outcome"] for r in report["tests"])
    assert outcomes == ["failed"] + ["not run"] * 5, outcomes
    report, _ = check.run_pytest(["task2_4"], root=tree)   # without stop_early every test runs
    assert [r["outcome"] for r in report["tests"]] == ["failed"]


def test_a_long_failure_line_keeps_its_hint(tree):
    (tree / "tests" / "public" / "test_mod.py").write_text(TESTS.replace(
        'name="out"', 'name="a long description of the value " * 12'))
    detail = check.run("task2_2", root=tree, quiet=True).tasks["task2_2"].detail
    assert len(detail) > 400 and detail.endswith("Hint: add one, do not double."), detail


def test_a_later_task_failing_with_task2_0_failing_says_so(tree):
    # The given code of every task runs on the student's geometry (task2_0), so a
    # failing later task points at task2_0 when task2_0 fails too; asked for a later task alone,
    # check runs task2_0 as well and shows it only when it does not pass.
    (tree / "pyproject.toml").write_text(PYPROJECT.replace('markers = ["task2_1: a"',
                                                           'markers = ["task2_0: geometry", "task2_1: a"'))
    geometry = tree / "tests" / "public" / "test_geometry.py"
    geometry.write_text("import pytest\n\n@pytest.mark.task2_0\ndef test_size():\n    assert 31 == 32, 'off by one'\n")
    result = check.run(root=tree, quiet=True)
    assert result.tasks["task2_0"].status == "FAILED"
    assert result.tasks["task2_2"].detail.startswith("task2_0 FAILED too"), result.tasks["task2_2"].detail
    assert "Hint: add one" in result.tasks["task2_2"].detail
    assert result.tasks["task2_1"].status == "passed" and "task2_0" not in result.tasks["task2_1"].detail
    result = check.run("task2_2", root=tree, quiet=True)
    assert list(result.tasks) == ["task2_0", "task2_2"] and "task2_0 FAILED too" in result.tasks["task2_2"].detail
    result = check.run("task2_1", root=tree, quiet=True)
    assert list(result.tasks) == ["task2_0", "task2_1"] and result.returncode == 0, result.table()
    geometry.write_text("import pytest\n\n@pytest.mark.task2_0\ndef test_size():\n    assert 32 == 32\n")
    result = check.run("task2_2", root=tree, quiet=True)
    assert list(result.tasks) == ["task2_2"] and not result.tasks["task2_2"].detail.startswith("task2_0")
