"""cs_layers.grading_run: the notebooks' switch for the autograder's run (CS_LAYERS_GRADING=1)."""
import pytest

from cs_layers import grading_run


@pytest.mark.parametrize("value, active", [("1", True), ("", False), ("0", False), ("yes", False)])
def test_active_only_when_the_grader_sets_it(monkeypatch, value, active):
    monkeypatch.setenv("CS_LAYERS_GRADING", value)
    assert grading_run.active() is active


def test_outside_the_grader_everything_trains_in_full(monkeypatch, tmp_path):
    monkeypatch.delenv("CS_LAYERS_GRADING", raising=False)
    loader = [(i, i) for i in range(10)]
    assert grading_run.demo_batches(loader) is loader
    (tmp_path / "challenge_model.pt").write_bytes(b"weights")
    assert not grading_run.reuse(tmp_path / "challenge_model.pt")


def test_a_grading_run_trains_a_few_batches_and_reuses_submitted_files(monkeypatch, tmp_path):
    monkeypatch.setenv("CS_LAYERS_GRADING", "1")
    loader = [(i, i) for i in range(10)]
    assert list(grading_run.demo_batches(loader)) == loader[:grading_run.DEMO_BATCHES]
    assert list(grading_run.demo_batches(loader[:2])) == loader[:2]
    assert not grading_run.reuse(tmp_path / "challenge_model.pt")  # not submitted: train after all
    (tmp_path / "challenge_model.pt").write_bytes(b"weights")
    assert grading_run.reuse(tmp_path / "challenge_model.pt")
    (tmp_path / "folder.pt").mkdir()
    assert not grading_run.reuse(tmp_path / "folder.pt")
