"""Project hygiene that no other test pins: stale lists, issue numbers in code, one model size cap."""
import re
import subprocess
from pathlib import Path

from cs_layers import course

ROOT = Path(__file__).resolve().parent.parent


def test_bench_docstring_lists_every_benchmark():
    import bench
    mains = sorted(p.stem for p in (ROOT / "bench").glob("*.py")
                   if 'if __name__ == "__main__":' in p.read_text(encoding="utf-8"))
    assert mains and all(f"python -m bench.{m}" in bench.__doc__ for m in mains), mains


def test_no_issue_numbers_in_code():
    files = subprocess.run(["git", "ls-files", "*.py", "*.sh", "Makefile", "*.toml"], cwd=ROOT,
                           capture_output=True, text=True).stdout.split()
    files = files or [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if ".venv" not in p.parts]
    hits = [f"{f}:{i}" for f in files for i, line in
            enumerate((ROOT / f).read_text(encoding="utf-8").splitlines(), 1)
            if re.search(r"\bissues? \d+\b", line)]
    assert not hits, f"say what the code does, not which issue asked for it: {hits}"


def test_one_size_cap_for_model_files():
    from cs_layers import submit, torch_nets
    from grading import hidden_tests, torch_cases, unpack
    caps = {"submit": submit.MAX_MODEL_BYTES, "unpack": unpack.MAX_MODEL_BYTES,
            "hidden_tests": hidden_tests.MAX_MODEL_BYTES, "torch_cases": torch_cases.MAX_WEIGHTS_BYTES,
            "torch_nets": torch_nets.MAX_CHALLENGE_BYTES}
    assert set(caps.values()) == {course.MAX_MODEL_BYTES}, caps


def test_course_names_are_not_redefined():
    """The assignment folder, notebooks and model file names are spelled once, in course.py."""
    from cs_layers import cnn, submit
    from grading import examples, gradebook, notebooks, release, unpack
    assert cnn.PARAM_NAMES is submit.MODEL_KEYS is course.PARAM_NAMES
    assert notebooks.STUDENT_ID is course.STUDENT_ID
    assert {release.ASSIGNMENT, gradebook.ASSIGNMENT, notebooks.ASSIGNMENT} == {course.ASSIGNMENT}
    assert unpack.NOTEBOOKS == tuple(submit.NOTEBOOKS) == tuple(f"{examples.NOTEBOOK_DIR}/{n}"
                                                               for n in examples.NOTEBOOKS)
    assert unpack.MODEL_FILE == submit.MODEL == examples.MODEL_FILE
    assert unpack.CHALLENGE_FILE == submit.CHALLENGE == examples.CHALLENGE_FILE
