"""The student release: contents, leak check, build failures, and the round trip.

Rule for public tests (checked by the round trip):
- on the stubbed release, a test marked taskX_Y must fail with a
  NotImplementedError that names taskX_Y itself or an EARLIER task (a
  prerequisite it calls, e.g. a conv backward test that runs the naive forward);
- with only taskX_Y's regions stubbed, it must fail with taskX_Y's own
  NotImplementedError (so it really exercises the student's code);
- a test of GIVEN code only (argument checks in shapes.py, load_model) carries
  no task marker, and must pass on the stubs;
- nothing may fail while importing; with the solutions put back, all pass.
"""
import json
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from cs_layers.check import run_pytest, task_key
from grading import leakcheck, markers, release
from grading.__main__ import main as grading_main

ROOT = Path(__file__).resolve().parent.parent
NB = "assignments/convnets/ConvolutionalNetworks.ipynb"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("rel") / "release"
    release.build(out, ROOT, log=lambda *a: None)
    return out


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _all_secrets():
    return leakcheck.collect_secrets(ROOT)


def test_release_holds_the_student_files_and_nothing_instructor_only(built):
    files = _files(built)
    for must in ["README.md", "pyproject.toml", "requirements.txt", "setup_gpu.sh", "docs/tasks.md",
                 "cs_layers/check.py", "cs_layers/submit.py", release.MANIFEST, NB,
                 "assignments/convnets/PyTorch.ipynb", "tests/conftest.py", "datasets/digits.npz"]:
        assert must in files, f"{must} missing from the release"
    assert not [f for f in files if f.startswith(("grading/", "bench/", ".venv/")) or "__pycache__" in f
                or f.endswith((".pyc", "convnet_model.npz")) or "cifar-10-batches-py" in f]
    assert all(f.startswith("tests/public/") or f == "tests/conftest.py" for f in files if f.startswith("tests/"))
    assert (built / "README.md").read_text() == (ROOT / "docs/student_README.md").read_text()
    assert (built / "setup_gpu.sh").stat().st_mode & 0o111, "setup_gpu.sh must stay executable"
    assert built.stat().st_mode & 0o755 == 0o755


def test_stubs_replace_every_region_and_given_code_is_untouched(built):
    n = 0
    for src in sorted((ROOT / "cs_layers").glob("*.py")):
        text = src.read_text(encoding="utf-8")
        stubbed, regions = markers.strip_solutions(text, src.name)
        got = (built / "cs_layers" / src.name).read_text(encoding="utf-8")
        assert got == stubbed, f"cs_layers/{src.name} in the release differs from its stubbed source"
        assert markers.BEGIN not in got
        n += len(regions)
    assert n >= 10, "the instructor tree should hold the solution regions of tasks 2_1..2_11"


def test_release_notebooks_have_no_outputs_and_a_manifest_of_their_cells(built):
    manifest = json.loads((built / release.MANIFEST).read_text())
    for name in ("ConvolutionalNetworks.ipynb", "PyTorch.ipynb"):
        nb = nbformat.read(str(built / "assignments/convnets" / name), as_version=4)
        assert all(not c.get("outputs") and c.get("execution_count") is None
                   for c in nb.cells if c.cell_type == "code")
        ids = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "grade_id" in c.metadata.get("nbgrader", {})}
        assert ids and set(manifest[name]) == ids


def test_leak_check_passes_on_the_release(built):
    assert leakcheck.check_release(built, ROOT) > 50


def _plant_py(tree, secret):
    path = tree / "cs_layers" / "shapes.py"
    lines = path.read_text().splitlines()
    lines.insert(5, secret.text)
    path.write_text("\n".join(lines) + "\n")
    return "cs_layers/shapes.py:6"


def _plant_output(tree, secret):
    path = tree / NB
    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="log\n" + secret.text.strip() + "\n")]
    nbformat.write(nb, str(path))
    return f"{NB}: cells["


def _plant_zip(tree, secret):
    with zipfile.ZipFile(tree / "datasets" / "extra.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("notes.txt", "x\n" + secret.text + "\n")
    return "datasets/extra.npz!notes.txt:2"


def _plant_pyc(tree, secret):
    (tree / "cs_layers" / "__pycache__").mkdir()
    (tree / "cs_layers" / "__pycache__" / "layers.cpython-311.pyc").write_bytes(b"\x00")
    return "cs_layers/__pycache__/layers.cpython-311.pyc: forbidden folder"


@pytest.mark.parametrize("plant", [_plant_py, _plant_output, _plant_zip, _plant_pyc])
def test_a_planted_leak_is_caught_with_its_location(built, tmp_path, plant):
    tree = tmp_path / "copy"
    shutil.copytree(built, tree)
    secrets = _all_secrets()
    secret = next(s for k, s in secrets.items() if len(k) >= 20 and "layers.py" in s.origin)
    where = plant(tree, secret)
    with pytest.raises(leakcheck.LeakError) as e:
        leakcheck.check_release(tree, ROOT)
    assert where in str(e.value), str(e.value)


# ---- build failures, on a tiny instructor tree (fast) ----
BEGIN, END = markers.BEGIN, markers.END
MOD = f"def f(x):\n    # task2_1: f\n    {BEGIN}\n    return_value = x * 41 + x\n    {END}\n    return return_value\n"


@pytest.fixture
def tiny(tmp_path):
    src = tmp_path / "src"
    (src / "cs_layers").mkdir(parents=True)
    (src / "cs_layers" / "__init__.py").write_text("")
    (src / "cs_layers" / "mod.py").write_text(MOD)
    (src / "tests" / "public").mkdir(parents=True)
    (src / "tests" / "public" / "test_mod.py").write_text("def test_f():\n    pass\n")
    (src / "tests" / "test_hidden.py").write_text("SECRET = 1\n")
    (src / "datasets").mkdir()
    (src / "datasets" / "README.md").write_text("data\n")
    (src / "docs").mkdir()
    for f in ("pyproject.toml", "requirements.txt", "setup_gpu.sh", "docs/tasks.md", "docs/student_README.md",
              "tests/conftest.py"):
        (src / f).write_text("x\n")
    shutil.copy(ROOT / "nbgrader_config.py", src / "nbgrader_config.py")
    (src / "assignments" / "convnets").mkdir(parents=True)
    cell = new_code_cell(f"{BEGIN}\nanswer = 6 * 7 + 0\n{END}")
    cell.metadata["nbgrader"] = {"grade_id": "task2_1_answer", "solution": True, "grade": False,
                                 "locked": False, "schema_version": 3}
    nbformat.write(new_notebook(cells=[cell]), str(src / "assignments/convnets/Tiny.ipynb"))
    return src


def test_tiny_build_works_and_refuses_a_non_empty_outdir_without_force(tiny, tmp_path):
    out = tmp_path / "out"
    assert grading_main(["release", str(out), "--source", str(tiny)]) == 0
    assert "NotImplementedError" in (out / "cs_layers/mod.py").read_text()
    assert "answer = 6 * 7" not in (out / "assignments/convnets/Tiny.ipynb").read_text()
    assert not (out / "tests/test_hidden.py").exists()
    with pytest.raises(release.ReleaseError, match="not empty.*--force"):
        release.build(out, tiny, log=lambda *a: None)
    (tiny / "cs_layers" / "extra.py").write_text("y = 2\n")
    release.build(out, tiny, force=True, log=lambda *a: None)
    assert (out / "cs_layers/extra.py").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]   # no temp folders left


@pytest.mark.parametrize("text", [MOD.replace(f"    {END}\n", ""), MOD.replace("    # task2_1: f\n", ""),
                                  MOD.replace(f"    {BEGIN}\n", f"    {BEGIN}\n    # task2_2: g\n    {BEGIN}\n")])
def test_bad_markers_fail_the_build_with_file_line_and_leave_nothing(tiny, tmp_path, text, capsys):
    (tiny / "cs_layers" / "mod.py").write_text(text)
    assert grading_main(["release", str(tmp_path / "out"), "--source", str(tiny)]) == 1
    assert "release build FAILED: cs_layers/mod.py:" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.parametrize("leaky, where", [
    ("datasets/README.md", "datasets/README.md:2"),
    ("tests/public/test_mod.py", "tests/public/test_mod.py:3"),
])
def test_a_leak_in_shipped_sources_fails_the_build(tiny, tmp_path, leaky, where, capsys):
    (tiny / leaky).write_text((tiny / leaky).read_text() + "return_value = x * 41 + x\n")
    assert grading_main(["release", str(tmp_path / "out"), "--source", str(tiny)]) == 1
    err = capsys.readouterr().err
    assert f"{where}: solution line from cs_layers/mod.py:4 (task2_1)" in err, err
    assert not (tmp_path / "out").exists()


# ---- the round trip: stubs fail for the right task, solutions put back pass ----
def _restore(tree):
    for src in sorted((ROOT / "cs_layers").glob("*.py")):
        regions = markers.parse_regions(src.read_text(encoding="utf-8"), src.name)
        dst = tree / "cs_layers" / src.name
        restored = markers.restore_solutions(dst.read_text(encoding="utf-8"), regions, src.name)
        assert restored == src.read_text(encoding="utf-8")
        dst.write_text(restored, encoding="utf-8")


def _assert_imports_release(report, tree):
    assert Path(report["package"]).resolve() == (tree / "cs_layers" / "__init__.py").resolve(), \
        f"the public tests imported {report['package']}, not the release's cs_layers"
    assert not report["collect_errors"], report["collect_errors"]


def test_round_trip_every_public_test_fails_on_the_stubs_for_its_task(built, tmp_path):
    tree = tmp_path / "stubbed"
    shutil.copytree(built, tree)
    report, output = run_pytest(root=tree)
    _assert_imports_release(report, tree)
    assert report["tests"], "no public tests were collected"
    bad = []
    for r in report["tests"]:
        named = r["not_implemented"].split(":")[0]
        if not r["tasks"]:
            if r["outcome"] != "passed":
                bad.append(f"{r['nodeid']}: has no task marker, so it must test given code only and pass "
                           f"on the stubs; it {r['outcome']} ({r['exc_type']}: {r['message'][:150]})")
        elif r["outcome"] != "failed" or not named:
            bad.append(f"{r['nodeid']}: {r['outcome']} on the stubs, not a NotImplementedError failure "
                       f"({r['exc_type']}: {r['message'][:150]})")
        elif task_key(named) > max(map(task_key, r["tasks"])):
            bad.append(f"{r['nodeid']} ({r['tasks']}): stopped on {named}, a LATER task")
    assert not bad, f"{len(bad)} public test(s) break the stub rule (see this file's docstring):\n" + "\n".join(bad)


def test_round_trip_with_the_solutions_put_back_every_public_test_passes(built, tmp_path):
    tree = tmp_path / "restored"
    shutil.copytree(built, tree)
    _restore(tree)
    report, output = run_pytest(root=tree)
    _assert_imports_release(report, tree)
    failed = [r["nodeid"] + ": " + r["message"][:200] for r in report["tests"] if r["outcome"] not in
              ("passed", "skipped")]
    assert report["tests"] and not failed, "\n".join(failed) + output[-2000:]


@pytest.mark.slow
def test_round_trip_each_task_alone_fails_with_its_own_stub(built, tmp_path):
    tree = tmp_path / "one_task"
    shutil.copytree(built, tree)
    _restore(tree)
    sources = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "cs_layers").glob("*.py")}
    tasks = sorted({r.task for name, text in sources.items() for r in markers.parse_regions(text, name)},
                   key=task_key)
    bad = []
    for task in tasks:
        for name, text in sources.items():
            (tree / "cs_layers" / name).write_text(markers.strip_solutions(text, name, {task})[0])
        report, _ = run_pytest([task], root=tree)
        _assert_imports_release(report, tree)
        bad += [f"{r['nodeid']}: with only {task} stubbed it {r['outcome']} ({r['exc_type']}: {r['message'][:150]})"
                for r in report["tests"] if not r["not_implemented"].startswith(f"{task}:")]
    assert not bad, f"{len(bad)} public test(s) do not exercise their own task:\n" + "\n".join(bad)


def test_cli_usage_and_unknown_command(capsys):
    assert grading_main([]) == 2
    assert grading_main(["--help"]) == 0
    assert grading_main(["publish"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'publish'" in err and "release" in err


def test_check_on_the_fresh_release_runs_one_test_per_stubbed_task(built, tmp_path):
    # issue 14, item 7: `python -m cs_layers.check` on the stubs stops each task at its first
    # NotImplementedError, so a fresh release checks in seconds, not minutes.
    from cs_layers.check import run
    tree = tmp_path / "fresh"
    shutil.copytree(built, tree)
    result = run(root=tree, quiet=True)
    assert not result.ok and all(s.status in ("not implemented yet", "no public tests") or
                                 s.status.startswith("needs ") for s in result.tasks.values()), result.table()
    report, _ = run_pytest(root=tree, stop_early=True)
    ran = {}
    for r in report["tests"]:
        if r["outcome"] != "not run":
            for task in r["tasks"]:
                ran.setdefault(task, []).append(r["nodeid"])
    assert all(len(ids) == 1 for ids in ran.values()), {t: ids for t, ids in ran.items() if len(ids) > 1}
