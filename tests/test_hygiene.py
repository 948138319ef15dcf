"""Project hygiene that no other test pins: stale lists, issue numbers in code, one size cap per file kind."""
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


def test_one_size_cap_per_file_kind():
    """The caps of submitted files (and the challenge model's size) are defined in course.py alone;
    the student's submit and the grader's unpack both ask course.size_cap."""
    caps = re.compile(r"^\s*(MAX_\w*(BYTES|PARAMS))\s*=\s*(.*)$")
    names = {"MAX_PY_BYTES", "MAX_NOTEBOOK_BYTES", "MAX_MODEL_BYTES", "MAX_CHALLENGE_PARAMS"}
    defined = {}
    for path in sorted((ROOT / "cs_layers").glob("*.py")) + sorted((ROOT / "grading").rglob("*.py")):
        for line in path.read_text(encoding="utf-8").splitlines():
            m = caps.match(line)
            if m and (m.group(1) in names or "course." in m.group(3)
                      or re.search(r"\b(50|1) << 20\b|5_000_000", m.group(3))):
                defined.setdefault(m.group(1), []).append(path.relative_to(ROOT).as_posix())
    assert defined == {name: ["cs_layers/course.py"] for name in names}, defined
    assert [course.size_cap(p) for p in ("cs_layers/layers.py", "a/b.ipynb", "a/convnet_model.npz",
                                         "a/challenge_model.pt")] == \
        [course.MAX_PY_BYTES, course.MAX_NOTEBOOK_BYTES, course.MAX_MODEL_BYTES, course.MAX_MODEL_BYTES]


def test_the_challenge_weights_path_comes_from_the_course_table():
    from grading import torch_cases, torch_probes
    assert torch_cases.STAGED_WEIGHTS.name == course.CHALLENGE_FILE
    assert "challenge_model.pt" not in (ROOT / "grading" / "torch_probes.py").read_text(encoding="utf-8")
    assert not hasattr(torch_probes, "MAX_CHALLENGE_PARAMS")


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
