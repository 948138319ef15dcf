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
import bz2
import json
import lzma
import os
import shutil
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from cs_layers.check import run_pytest, task_key
from grading import leakcheck, markers, release
from grading.__main__ import main as grading_main

from session import release_tree
from treehash import tree_hash

ROOT = Path(__file__).resolve().parent.parent
NB = "assignments/convnets/ConvolutionalNetworks.ipynb"


@pytest.fixture
def built(tmp_path_factory):
    """The release of this tree, built once per session (tests copy it before changing it)."""
    return release_tree(tmp_path_factory)


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _all_secrets():
    return leakcheck.collect_secrets(ROOT)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_release_notebooks_have_no_outputs_and_a_manifest_of_their_cells(built):
    manifest = json.loads((built / release.MANIFEST).read_text())
    for name in ("ConvolutionalNetworks.ipynb", "PyTorch.ipynb"):
        nb = nbformat.read(str(built / "assignments/convnets" / name), as_version=4)
        assert all(not c.get("outputs") and c.get("execution_count") is None
                   for c in nb.cells if c.cell_type == "code")
        ids = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "grade_id" in c.metadata.get("nbgrader", {})}
        assert ids and set(manifest[name]) == ids


@pytest.mark.slow
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


def _commented_secret():
    """A long solution line of the real source that carries an inline comment, without it."""
    for src in sorted((ROOT / "cs_layers").glob("*.py")):
        for r in markers.parse_regions(src.read_text(encoding="utf-8"), src.name):
            for line in r.body:
                code, sep, _ = line.partition("  # ")
                if sep and len("".join(code.split())) >= 20 and "'" not in code and '"' not in code:
                    return code.strip()
    raise AssertionError("no solution line with an inline comment in cs_layers/")


def _plant_retyped_without_comment(tree, secret):
    path = tree / "tests" / "public" / "strategies.py"
    path.write_text(path.read_text() + "\n" + _commented_secret() + "\n")
    return "tests/public/strategies.py:"


def _plant_short_line_in_markdown(tree, secret):
    path = tree / "docs" / "tasks.md"
    path.write_text(path.read_text() + "\nHint: the backward pass is `dx=dout*( x>0 )`, nothing more.\n")
    return "docs/tasks.md:"


def _plant_utf16(tree, secret):
    (tree / "datasets" / "notes.txt").write_bytes(("notes\n" + secret.text + "\n").encode("utf-16"))
    return "datasets/notes.txt (decoded as UTF-16/32"


def _plant_xz(tree, secret):
    (tree / "datasets" / "notes.json").write_bytes(lzma.compress(("x\n" + secret.text + "\n").encode()))
    return "datasets/notes.json!unxz:2"


def _plant_bz2(tree, secret):
    (tree / "datasets" / "notes.md").write_bytes(bz2.compress(("x\n" + secret.text + "\n").encode()))
    return "datasets/notes.md!bunzip2:2"


def _plant_unicode_npy(tree, secret):
    np.save(tree / "datasets" / "labels.npy", np.array(["cat", secret.text.strip()]))
    return "datasets/labels.npy (array strings):2"


def _plant_unicode_npz(tree, secret):
    np.savez_compressed(tree / "datasets" / "more.npz", names=np.array([secret.text.strip()]))
    return "datasets/more.npz!names.npy (array strings):1"


def _plant_compiled_module(tree, secret):
    (tree / "cs_layers" / "_speedups.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(64))
    return "cs_layers/_speedups.cpython-311-x86_64-linux-gnu.so: file type not on the release allow-list"


def _plant_editor_backup(tree, secret):
    (tree / "cs_layers" / ".layers.py.swp").write_bytes(b"b0VIM 9.0\x00" + bytes(32))
    return "cs_layers/.layers.py.swp: file type not on the release allow-list"


def _plant_unstripped_marker(tree, secret):
    path = tree / "tests" / "public" / "strategies.py"
    path.write_text(path.read_text() + "\n#  BEGIN SOLUTION\n")
    return "solution marker text"


PLANTS = [_plant_py, _plant_output, _plant_zip, _plant_pyc, _plant_retyped_without_comment,
          _plant_short_line_in_markdown, _plant_utf16, _plant_xz, _plant_bz2, _plant_unicode_npy,
          _plant_unicode_npz, _plant_compiled_module, _plant_editor_backup, _plant_unstripped_marker]


@pytest.mark.slow
@pytest.mark.parametrize("plant", PLANTS, ids=lambda f: f.__name__[7:])
def test_a_planted_leak_is_caught_with_its_location(built, tmp_path, plant):
    tree = tmp_path / "copy"
    shutil.copytree(built, tree)
    secrets = _all_secrets()
    secret = next(s for k, s in secrets.items() if len(k) >= 20 and "layers.py" in s.origin)
    where = plant(tree, secret)
    with pytest.raises(leakcheck.LeakError) as e:
        leakcheck.check_release(tree, ROOT)
    assert where in str(e.value), str(e.value)


@pytest.mark.slow
def test_short_given_lines_and_prose_are_not_leaks(built, tmp_path):
    """Token matching must not flag common given code or prose: the real release is clean (above),
    and so is a file of short lines that every layer writes."""
    tree = tmp_path / "copy"
    shutil.copytree(built, tree)
    (tree / "docs" / "extra.md").write_text("out = x.copy()\nreturn dx, dw, db\nN, C, H, W = x.shape\n"
                                            "The ReLU passes x > 0 and blocks the rest.\n")
    assert leakcheck.check_release(tree, ROOT) > 50


def test_no_solution_line_is_handed_out_by_given_code_or_a_public_cell():
    # The leak check cannot search the release for a solution line that the given
    # code (a docstring formula) or a public notebook cell (a check) also holds, since the release
    # ships those on purpose; so there must be none.
    assert leakcheck.handed_out(ROOT) == []


@pytest.mark.slow  # inspects the release build (nbgrader)
def test_the_hints_the_issue_named_no_longer_hand_out_their_line(built):
    lines = ["dx = dout * (x > 0)", "loss, dscores = softmax_loss(scores, y)",
             "dx = inv_std / N * (N * dx_hat - sum(dx_hat) - x_hat * sum(dx_hat * x_hat))",
             "span = size + 2 * pad - kernel"]
    for f in sorted(built.rglob("*")):
        if f.is_file() and f.suffix in (".py", ".ipynb", ".md"):
            text = " ".join(leakcheck.tokens(f.read_text(encoding="utf-8")))
            for line in lines:
                assert " ".join(leakcheck.tokens(line)) not in text, f"{f.relative_to(built)} holds {line!r}"


@pytest.mark.slow  # inspects the release build (nbgrader)
def test_every_stubbed_notebook_code_cell_raises_naming_its_task(built, tmp_path):
    # nbgrader's own stub is a bare `raise NotImplementedError()`; each of ours
    # names its task and what to write, and running the stubbed cell raises it.
    found = 0
    for name in ("ConvolutionalNetworks.ipynb", "PyTorch.ipynb"):
        nb = nbformat.read(str(built / "assignments/convnets" / name), as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type != "code" or not meta.get("solution"):
                continue
            found += 1
            task = meta["grade_id"].split("_")[0] + "_" + meta["grade_id"].split("_")[1]
            assert "NotImplementedError()" not in cell.source, f"{name}: {meta['grade_id']} has a bare stub"
            stub = cell.source.index("# YOUR CODE HERE")
            code = cell.source[:cell.source.index("\n", stub)]   # the cell up to its stub, then the guard
            guard = cell.source[cell.source.index("\n", stub):].split("\n\n")[0]
            if guard.strip().startswith("if "):
                code += "\n" + guard.split("\nstart")[0]
            namespace = {"data": {"name": "digits"}, "CIFAR_EPOCHS": 1, "NUM_EPOCHS": 1,
                         "np": np, "ThreeLayerConvNet": None, "Solver": None}
            with pytest.raises(NotImplementedError, match=f"^{task}: "):
                exec(compile(code, f"{name}:{meta['grade_id']}", "exec"), namespace)
    assert found, "no stubbed code cell in the release notebooks"


# ---- build failures, on a tiny instructor tree (fast where the build stops before nbgrader) ----
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


@pytest.mark.slow
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


@pytest.mark.slow
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


def _nb_cell(tiny, source, **flags):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade_id": "task2_1_answer", "solution": True, "grade": False,
                                 "locked": False, "schema_version": 3, **flags}
    nbformat.write(new_notebook(cells=[cell]), str(tiny / "assignments/convnets/Tiny.ipynb"))


def test_a_solution_line_in_given_code_fails_the_build(tiny, tmp_path, capsys):
    mod = tiny / "cs_layers" / "mod.py"
    mod.write_text(mod.read_text().replace("def f(x):\n", 'def f(x):\n    """Returns return_value = x * 41 + x."""\n'))
    assert grading_main(["release", str(tmp_path / "out"), "--source", str(tiny)]) == 1
    err = capsys.readouterr().err
    assert "cs_layers/mod.py:2: solution line from cs_layers/mod.py:5 (task2_1)" in err, err
    assert "hands them out" in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("typo", ["BEGIN  SOLUTION", "BEGIN SOLUTON", "BEGIN SOLUTION ###", "Begin Solution"])
def test_a_marker_typo_in_a_module_fails_the_build(tiny, tmp_path, typo, capsys):
    """The same typo in both markers (copy and paste) must not leave the region in the release."""
    end = typo.replace("BEGIN", "END").replace("Begin", "End")
    (tiny / "cs_layers" / "mod.py").write_text(MOD.replace(BEGIN, "### " + typo).replace(END, "### " + end))
    assert grading_main(["release", str(tmp_path / "out"), "--source", str(tiny)]) == 1
    assert "cs_layers/mod.py:3: " in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_marker_typo_in_a_notebook_fails_the_build(tiny, tmp_path, capsys):
    _nb_cell(tiny, "# BEGIN  SOLUTION\nanswer = compute_the_answer(6, 7) + 0\n# END SOLUTION")
    assert grading_main(["release", str(tmp_path / "out"), "--source", str(tiny)]) == 1
    assert "looks like a solution marker" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_single_hash_notebook_markers_are_secret(tiny, tmp_path, capsys):
    """nbgrader strips `# BEGIN SOLUTION` regions too, so their lines are secrets like any other."""
    _nb_cell(tiny, "x = 1\n# BEGIN SOLUTION\nanswer = compute_the_answer(6, 7) + offset\n# END SOLUTION")
    (tiny / "datasets" / "README.md").write_text("data: answer = compute_the_answer(6, 7) + offset\n")
    assert grading_main(["release", str(tmp_path / "out"), "--source", str(tiny)]) == 1
    assert "datasets/README.md:1: solution line from assignments/convnets/Tiny.ipynb" in capsys.readouterr().err


@pytest.mark.slow
def test_only_module_files_of_cs_layers_and_allowed_types_are_copied(tiny, tmp_path):
    cs = tiny / "cs_layers"
    (cs / "mod.py~").write_text(MOD)
    (cs / ".mod.py.swp").write_bytes(b"b0VIM\x00" + MOD.encode())
    (cs / "#mod.py#").write_text(MOD)
    (cs / "_fast.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF" + bytes(16))
    (cs / "new_module.py").write_text("def g():\n    return 2\n")
    os.symlink("/etc/hostname", cs / "linked.py")
    (tiny / "datasets" / "notes.txt.orig").write_text("x\n")
    (tiny / "datasets" / ".DS_Store").write_bytes(b"\x00")
    lines = []
    release.build(tmp_path / "out", tiny, log=lines.append)
    assert sorted(p.name for p in (tmp_path / "out" / "cs_layers").iterdir()) == ["__init__.py", "mod.py",
                                                                                 "new_module.py"]
    assert sorted(p.name for p in (tmp_path / "out" / "datasets").iterdir()) == ["README.md"]
    assert any("not copied" in line and "mod.py~" in line for line in lines), lines


# ---- OUTDIR safety: nothing but an earlier release is ever replaced ----
@pytest.mark.parametrize("where", ["the source", "inside it", "a folder above it", "a link to it",
                                   "inside it through a link", "an unmarked folder"])
def test_release_never_replaces_the_source_tree_or_a_foreign_folder(tiny, tmp_path, where, capsys):
    (tiny / ".git").mkdir()
    (tiny / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tiny / "uncommitted.txt").write_text("work in progress\n")
    (tiny / "out").mkdir()
    (tiny / "out" / "old.txt").write_text("x\n")
    (tmp_path / "link").symlink_to(tiny)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work\n")
    out = {"the source": tiny, "inside it": tiny / "out", "a folder above it": tmp_path,
           "a link to it": tmp_path / "link", "inside it through a link": tmp_path / "link" / "release",
           "an unmarked folder": tmp_path / "mine"}[where]
    before = tree_hash(tmp_path)
    assert grading_main(["release", str(out), "--force", "--source", str(tiny)]) == 1
    err = capsys.readouterr().err
    assert ("refusing to build into" in err) if where != "an unmarked folder" else \
        ("was not made by a release build" in err), err
    assert tree_hash(tmp_path) == before


@pytest.mark.parametrize("out", ["/", "HOME", "HOME_PARENT", "/tmp"])
def test_release_refuses_obvious_roots(tiny, tmp_path, monkeypatch, out):
    home = tmp_path / "home" / "me"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    out = {"HOME": home, "HOME_PARENT": home.parent}.get(out, out)
    before = tree_hash(tmp_path)
    with pytest.raises(release.ReleaseError, match="refusing to build into"):
        release.build(out, tiny, force=True, log=lambda *a: None)
    assert tree_hash(tmp_path) == before


@pytest.mark.slow
def test_force_replaces_an_earlier_release_only(tiny, tmp_path):
    out = tmp_path / "out"
    release.build(out, tiny, log=lambda *a: None)
    assert (out / release.RELEASE_MARK).is_file()
    (out / "stale.txt").write_text("old\n")
    release.build(out, tiny, force=True, log=lambda *a: None)
    assert not (out / "stale.txt").exists()
    (out / release.RELEASE_MARK).unlink()
    with pytest.raises(release.ReleaseError, match="was not made by a release build"):
        release.build(out, tiny, force=True, log=lambda *a: None)


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


# On a stub every example of a property test fails at once, and hypothesis then spends most of
# the run shrinking and explaining a failure whose example does not matter: the stub raises
# whatever the input. The round trips on stubs load this plugin (a profile without the shrink
# and explain phases); the verdict, the exception of the first failing example, is the same.
NO_SHRINK = """
from hypothesis import Phase, settings


def pytest_configure(config):
    settings.register_profile("stubs-no-shrink", settings(), phases=[Phase.explicit, Phase.reuse, Phase.generate])
    settings.load_profile("stubs-no-shrink")
"""


@pytest.fixture
def no_shrink(tmp_path, monkeypatch):
    """run_pytest's extra_args that load NO_SHRINK into the public-test process."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "stubs_no_shrink.py").write_text(NO_SHRINK)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in [str(tmp_path / "plugins"), os.environ.get("PYTHONPATH")] if p))
    return ["-p", "stubs_no_shrink"]


@pytest.mark.slow
def test_round_trip_every_public_test_fails_on_the_stubs_for_its_task(built, tmp_path, no_shrink):
    tree = tmp_path / "stubbed"
    shutil.copytree(built, tree)
    report, output = run_pytest(root=tree, extra_args=no_shrink)
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


@pytest.mark.slow
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
def test_round_trip_each_task_alone_fails_with_its_own_stub(built, tmp_path, no_shrink):
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
        report, _ = run_pytest([task], root=tree, extra_args=no_shrink)
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


@pytest.mark.slow
def test_check_on_the_fresh_release_runs_one_test_per_stubbed_task(built, tmp_path):
    # `python -m cs_layers.check` on the stubs stops each task at its first
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
