"""One exit-code convention for every command line (README, "Exit codes"):
0 ok, 1 a failure the user must fix (the message says how), 2 a usage error.

Each command's main() runs in this process on a cheap case of each kind.
"""
import importlib

import pytest

from cs_layers import course


def _code(module, argv, **kwargs):
    main = importlib.import_module(module).main
    try:
        code = main(argv, **kwargs)
    except SystemExit as e:  # argparse: 0 for --help, 2 for a usage error
        code = e.code if isinstance(e.code, int) or e.code is None else 1
    return code or 0


USAGE = [  # (module, argv) that must exit 2
    ("cs_layers.check", ["task9_99"]),
    ("cs_layers.check", ["--bogus"]),
    ("cs_layers.submit", ["--max-mb", "lots"]),
    ("cs_layers.train", ["--epochs", "0"]),
    ("cs_layers.data", []),
    ("grading.__main__", []),
    ("grading.__main__", ["no-such-command"]),
    ("grading.__main__", ["release"]),
    ("grading.__main__", ["autograde", "/no/such/folder", "--out", "/no/such/out"]),
    ("grading.__main__", ["collect-manual", "/no/such/out"]),
    ("grading.__main__", ["gradescope", "bundle.tar"]),
    ("grading.examples", []),
    ("bench.layers", ["--bogus"]),
    ("bench.train_epoch", ["--bogus"]),
    ("bench.notebooks", ["--bogus"]),
    ("bench.grading", ["--bogus"]),
]
HELP = sorted({m for m, _ in USAGE} | {"grading.release", "grading.autograde", "grading.collect_manual",
                                        "grading.gradescope"})


@pytest.mark.parametrize("module, argv", USAGE, ids=[f"{m} {' '.join(a)}" for m, a in USAGE])
def test_usage_errors_exit_2(module, argv):
    assert _code(module, argv) == 2


@pytest.mark.parametrize("module", HELP)
def test_help_exits_0(module, capsys):
    assert _code(module, ["--help"]) == 0
    assert "usage" in capsys.readouterr().out.lower()


def test_check_that_cannot_run_exits_1(tmp_path, monkeypatch):
    from cs_layers import check
    monkeypatch.setattr(check, "package_root", lambda: tmp_path)  # no tests/public here
    assert _code("cs_layers.check", ["task2_1"]) == 1


def test_submit_failure_exits_1(tmp_path):
    (tmp_path / "cs_layers").mkdir()  # nothing graded is there
    assert _code("cs_layers.submit", ["--no-check"], root=tmp_path) == 1
    assert not (tmp_path / "submission.zip").exists()


def test_train_without_the_dataset_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CS_LAYERS_DATA", str(tmp_path))
    assert _code("cs_layers.train", ["--data", "cifar10"]) == 1
    assert "CIFAR-10" in capsys.readouterr().err


def test_data_download_failure_exits_1(tmp_path):
    url = (tmp_path / "missing.tar.gz").as_uri()
    assert _code("cs_layers.data", ["download", "--dest", str(tmp_path), "--url", url, "--no-progress"]) == 1


def test_release_into_a_refused_folder_exits_1():
    assert _code("grading.__main__", ["release", "/"]) == 1


def test_examples_into_a_used_folder_exits_2(tmp_path):
    (tmp_path / "x").write_text("taken")
    assert _code("grading.examples", [str(tmp_path)]) == 2


def test_every_command_line_module_is_covered():
    """A new `python -m` entry point joins the lists above."""
    from pathlib import Path
    root = Path(course.__file__).resolve().parent.parent
    mains = {f"{p.parent.name}.{p.stem}" for d in ("cs_layers", "grading", "bench") for p in (root / d).glob("*.py")
             if 'if __name__ == "__main__":' in p.read_text(encoding="utf-8")}
    mains -= {"grading.worker"}  # runs inside the sandbox, started by the grader only
    covered = {m for m, _ in USAGE} | set(HELP)
    assert mains <= covered, sorted(mains - covered)
