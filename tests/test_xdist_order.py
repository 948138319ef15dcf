"""make test's scheduler (tests/xdist_order.py): its work units and its cost table stay current."""
from pathlib import Path

from xdist_order import COST, PER_MODE, scope_of

ROOT = Path(__file__).resolve().parent.parent


def test_the_corpus_is_one_unit_per_sandbox_mode_and_other_files_one_unit_each():
    corpus = "tests/test_autograde_corpus.py"
    assert scope_of(f"{corpus}::test_corpus_case_gets_its_exact_statuses[auto-correct]") == f"{corpus}[auto]"
    assert scope_of(f"{corpus}::test_crashes_are_never_a_plain_zero[none]") == f"{corpus}[none]"
    assert scope_of(f"{corpus}::test_killed_run_resumes_without_regrading_or_losing_anyone") == corpus
    assert scope_of("tests/test_release.py::test_a_planted_leak_is_caught_with_its_location[none]") \
        == "tests/test_release.py"
    assert scope_of("tests/public/test_cnn.py::test_numerical_gradient[0.0]") == "tests/public/test_cnn.py"


def test_every_costed_unit_names_a_test_file_and_a_mode_it_has():
    for unit in COST:
        path, _, mode = unit.partition("[")
        assert (ROOT / path).is_file(), f"tests/xdist_order.py: COST names {path}, which does not exist"
        if mode:
            assert mode.rstrip("]") in PER_MODE[path], unit
    text = (ROOT / "tests" / "test_autograde_corpus.py").read_text(encoding="utf-8")
    assert 'MODES = ["auto", pytest.param("none"' in text, "the corpus modes changed: update PER_MODE"
