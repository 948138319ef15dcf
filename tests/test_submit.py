"""cs_layers.submit: exactly the graded files, refusals with non-zero exit, warnings."""
import json
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cs_layers import course, submit
from grading.release import cell_manifest

from treehash import tree_hash

ROOT = Path(__file__).resolve().parent.parent


def _cell(source, grade_id, count=None, **flags):
    cell = new_code_cell(source, execution_count=count)
    cell.metadata["nbgrader"] = {"grade_id": grade_id, "grade": False, "locked": False,
                                 "solution": False, "schema_version": 3, **flags}
    if flags.get("grade"):
        cell.metadata["nbgrader"]["points"] = 1
    return cell


def _notebook(path):
    nb = new_notebook(cells=[
        new_markdown_cell("# Notebook"),
        _cell("import numpy as np", "setup", 1, locked=True),
        _cell("x = 1  # student answer", "task2_2_answer", 2, solution=True),
        _cell("assert x == 1", "task2_2_test", 3, grade=True, locked=True),
    ])
    nbformat.write(nb, str(path))


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "cs_layers").mkdir()
    (tmp_path / "cs_layers" / "__init__.py").write_text("")
    (tmp_path / "cs_layers" / "layers.py").write_text("def f():\n    return 1\n")
    nb_dir = tmp_path / "assignments" / "convnets"
    nb_dir.mkdir(parents=True)
    manifest = {}
    for name in ("ConvolutionalNetworks.ipynb", "PyTorch.ipynb"):
        _notebook(nb_dir / name)
        manifest[name] = cell_manifest(nb_dir / name)
    (nb_dir / ".release_manifest.json").write_text(json.dumps(manifest))
    np.savez(nb_dir / "convnet_model.npz", **{k: np.ones(3, np.float32) for k in submit.MODEL_KEYS})
    torch.save({"dataset": "digits", "state_dict": {"w": torch.ones(2)}}, tmp_path / submit.CHALLENGE)
    (tmp_path / "notes.txt").write_text("not graded")
    return tmp_path


def _run(tree, *args):
    return submit.main(["--no-check", *args], root=tree)


def test_packs_exactly_the_graded_files(tree, capsys):
    assert _run(tree) == 0
    with zipfile.ZipFile(tree / "submission.zip") as zf:
        names = sorted(zf.namelist())
    assert names == sorted(["cs_layers/__init__.py", "cs_layers/layers.py", submit.MODEL, submit.CHALLENGE,
                            *submit.NOTEBOOKS])
    out = capsys.readouterr()
    assert "wrote" in out.out and "convnet_model.npz" in out.out and "WARNING" not in out.out


def _refused(tree, capsys, *args, words):
    assert _run(tree, *args) == 1
    err = capsys.readouterr().err
    assert "submission NOT written" in err and words in err, err
    assert not (tree / "submission.zip").exists()
    assert not list(tree.glob(".submission-*"))   # no temp file left behind


def test_refuses_a_missing_checkpoint(tree, capsys):
    (tree / submit.MODEL).unlink()
    _refused(tree, capsys, words="convnet_model.npz: missing; train the ConvNet")


def test_refuses_missing_or_foreign_challenge_weights(tree, capsys):
    (tree / submit.CHALLENGE).unlink()
    _refused(tree, capsys, words="challenge_model.pt: missing; train the challenge model")
    torch.save({"w": torch.ones(1)}, tree / submit.CHALLENGE)
    _refused(tree, capsys, words="torch_nets.save_challenge")


def test_refuses_a_notebook_that_does_not_parse(tree, capsys):
    (tree / submit.NOTEBOOKS[1]).write_text('{"cells": [')
    _refused(tree, capsys, words="PyTorch.ipynb: not a valid notebook")


def test_refuses_a_deleted_grade_cell(tree, capsys):
    path = tree / submit.NOTEBOOKS[0]
    nb = nbformat.read(str(path), as_version=4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "task2_2_test"]
    nbformat.write(nb, str(path))
    _refused(tree, capsys, words="graded cell 'task2_2_test' of the release was deleted")


def test_refuses_an_edited_read_only_cell_but_not_an_edited_answer(tree, capsys):
    path = tree / submit.NOTEBOOKS[0]
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[2].source = "x = 1  # my own answer"
    nbformat.write(nb, str(path))
    assert _run(tree) == 0
    (tree / "submission.zip").unlink()
    nb.cells[1].source = "import numpy as np; np.allclose = lambda *a, **k: True"
    nbformat.write(nb, str(path))
    _refused(tree, capsys, words="read-only cell 'setup' was edited")


def test_refuses_without_the_release_manifest(tree, capsys):
    (tree / submit.MANIFEST).unlink()
    _refused(tree, capsys, words=".release_manifest.json: missing")


def test_refuses_a_syntax_error_and_a_bad_checkpoint(tree, capsys):
    (tree / "cs_layers" / "layers.py").write_text("def f(:\n")
    (tree / submit.MODEL).write_bytes(b"garbage")
    _refused(tree, capsys, words="cs_layers/layers.py:1: syntax error")


def test_refuses_a_zip_over_the_size_limit(tree, capsys):
    _refused(tree, capsys, "--max-mb", "0.0001", words="over the 0 MB limit")


def test_warns_on_out_of_order_and_unrun_cells_but_still_writes(tree, capsys):
    path = tree / submit.NOTEBOOKS[1]
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[1].execution_count, nb.cells[2].execution_count = 5, 2
    nb.cells[3].execution_count = None
    nbformat.write(nb, str(path))
    assert _run(tree) == 0
    out = capsys.readouterr().out
    assert "PyTorch.ipynb: cells were run out of order" in out
    assert "1 of 3 code cells were never run" in out


# ---------------------------------------------------------------- --partial

def test_partial_packs_what_exists_and_lists_what_is_missing(tree, capsys):
    (tree / "assignments/convnets/convnet_model.npz").unlink()
    (tree / "assignments/convnets/PyTorch.ipynb").unlink()
    assert _run(tree, "--partial") == 0
    out = capsys.readouterr().out
    with zipfile.ZipFile(tree / "submission.zip") as zf:
        names = sorted(zf.namelist())
    assert names == ["assignments/convnets/ConvolutionalNetworks.ipynb", "assignments/convnets/challenge_model.pt",
                     "cs_layers/__init__.py", "cs_layers/layers.py"]
    assert "PARTIAL submission: 2 graded file(s) missing and NOT included" in out
    assert "assignments/convnets/convnet_model.npz: train the ConvNet" in out
    assert "assignments/convnets/PyTorch.ipynb: restore it from the release" in out


def test_without_partial_the_refusal_names_the_option(tree, capsys):
    (tree / "assignments/convnets/convnet_model.npz").unlink()
    _refused(tree, capsys, words="(or submit what you have with --partial)")


@pytest.mark.parametrize("breakage, words", [
    ("corrupt", "PyTorch.ipynb: not a valid notebook"),
    ("edited", "read-only cell 'setup' was edited"),
    ("deleted", "graded cell 'task2_2_test' of the release was deleted"),
    ("syntax", "cs_layers/layers.py:1: syntax error"),
    ("checkpoint", "convnet_model.npz: cannot be read"),
])
def test_partial_still_refuses_anything_broken(tree, capsys, breakage, words):
    (tree / "assignments/convnets/PyTorch.ipynb").unlink()  # something is missing: a partial submission
    nb = tree / "assignments/convnets/ConvolutionalNetworks.ipynb"
    if breakage == "corrupt":
        (tree / "assignments/convnets/PyTorch.ipynb").write_text("{not json")
    elif breakage in ("edited", "deleted"):
        book = nbformat.read(str(nb), as_version=4)
        if breakage == "edited":
            book.cells[1].source = "import numpy as np; np.allclose = lambda *a, **k: True"
        else:
            del book.cells[3]
        nbformat.write(book, str(nb))
    elif breakage == "syntax":
        (tree / "cs_layers/layers.py").write_text("def f(:\n")
    else:
        (tree / "assignments/convnets/convnet_model.npz").write_bytes(b"PK\x03\x04 truncated")
    _refused(tree, capsys, "--partial", words=words)
    assert not (tree / "submission.zip").exists()


# ---- hostile and careless inputs: refused with a message, nothing of the student's changed ----
def _refused_untouched(tree, capsys, *args, words):
    before = tree_hash(tree)
    _refused(tree, capsys, *args, words=words)
    assert tree_hash(tree) == before


@pytest.mark.parametrize("what", ["module", "graded module", "folder", "notebook"])
def test_refuses_links_to_files_outside_the_assignment(tree, tmp_path_factory, capsys, what):
    outside = tmp_path_factory.mktemp("elsewhere")
    (outside / "secret.py").write_text("API_KEY = 'sk-live-0123456789'\n")
    if what == "module":
        (tree / "cs_layers" / "notes.py").symlink_to(outside / "secret.py")
        words = "cs_layers/notes.py: is a link"
    elif what == "graded module":
        (tree / "cs_layers" / "layers.py").unlink()
        (tree / "cs_layers" / "layers.py").symlink_to(outside / "secret.py")
        words = "cs_layers/layers.py: is a link"
    elif what == "folder":
        real = outside / "cs_layers"
        (tree / "cs_layers").rename(real)
        (tree / "cs_layers").symlink_to(real)
        words = "cs_layers/ is a link"
    else:
        nb = tree / submit.NOTEBOOKS[0]
        nb.rename(outside / "nb.ipynb")
        nb.symlink_to(outside / "nb.ipynb")
        words = "ConvolutionalNetworks.ipynb: is a link"
    _refused_untouched(tree, capsys, words=words)


def test_refuses_a_fifo_without_hanging(tree, capsys):
    import os
    os.mkfifo(tree / "cs_layers" / "pipe.py")
    _refused_untouched(tree, capsys, words="cs_layers/pipe.py: is not a regular file")


def test_refuses_a_module_over_the_graders_limit_even_if_it_compresses_well(tree, capsys):
    (tree / "cs_layers" / "big.py").write_text("x = 1\n" + "#" * (course.MAX_PY_BYTES + 10) + "\n")
    _refused_untouched(tree, capsys, words="cs_layers/big.py: over 1 MiB")


@pytest.mark.parametrize("output, words", [("cs_layers/cnn.py", "must be a .zip"),
                                           ("cs_layers/x.zip", "would write inside cs_layers/"),
                                           ("assignments/convnets/sub.zip",
                                            "would write inside assignments/convnets/")])
def test_refuses_an_output_that_would_replace_or_sit_among_graded_files(tree, capsys, output, words):
    (tree / "cs_layers" / "cnn.py").write_text("def g():\n    return 2\n")
    _refused_untouched(tree, capsys, "-o", str(tree / output), words=words)


def test_output_folder_gets_submission_zip_inside_and_no_temp_file_elsewhere(tree, tmp_path_factory, capsys):
    dest = tmp_path_factory.mktemp("dest")
    assert _run(tree, "-o", str(dest)) == 0
    assert sorted(p.name for p in dest.iterdir()) == ["submission.zip"]
    with zipfile.ZipFile(dest / "submission.zip") as zf:
        assert "cs_layers/layers.py" in zf.namelist()


@pytest.mark.parametrize("manifest, words", [
    ({}, "damaged or empty"),
    ({"ConvolutionalNetworks.ipynb": {}, "PyTorch.ipynb": {}}, "damaged or empty"),
    ({"ConvolutionalNetworks.ipynb": ["setup"], "PyTorch.ipynb": {"x": {"grade": True}}}, "damaged or empty"),
    ({"ConvolutionalNetworks.ipynb": {"setup": {"locked": "yes"}}, "PyTorch.ipynb": {"x": {}}}, "damaged or empty"),
    ([1, 2], "damaged or empty"),
])
def test_refuses_a_damaged_or_empty_manifest(tree, capsys, manifest, words):
    (tree / submit.MANIFEST).write_text(json.dumps(manifest))
    _refused_untouched(tree, capsys, words=words)


@pytest.mark.parametrize("meta", ["oops", ["grade_id"], {"grade_id": 7}])
def test_refuses_damaged_nbgrader_metadata_without_a_traceback(tree, capsys, meta):
    path = tree / submit.NOTEBOOKS[0]
    nb = json.loads(path.read_text())
    nb["cells"][2]["metadata"]["nbgrader"] = meta
    path.write_text(json.dumps(nb))
    _refused_untouched(tree, capsys, words="cell 3 has damaged nbgrader metadata")
