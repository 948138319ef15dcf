"""PyTorch tasks graded in the sandboxed torch worker: reference, stub, wrong, challenge, device."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import cs_layers
from cs_layers import torch_nets as tn
from grading import hidden_tests, torch_cases
from grading.examples import append_patch, wrap
from grading.markers import strip_solutions

REF = Path(cs_layers.__file__).parent
TASKS = list(hidden_tests.TORCH_TASKS)


def _heldout():
    """40 random images labelled by a fixed challenge model: that model scores 100%."""
    torch.manual_seed(0)
    model = tn.challenge_model("digits").eval()
    X = np.random.default_rng(0).standard_normal((40, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(X)).argmax(1).numpy()
    return model, {"digits": (X, y)}


@pytest.fixture(scope="module")
def setup():
    model, heldout = _heldout()
    suite = hidden_tests.Suite([], dict(hidden_tests.TASK_POINTS))
    suite.torch = torch_cases.build_suite(b"torch-grading-seed", heldout=heldout)
    return suite, model


def _submission(root: Path, model, *, stub=False, weights=True) -> Path:
    (root / "cs_layers").mkdir(parents=True)
    text = (REF / "torch_nets.py").read_text()
    if stub:
        text, _ = strip_solutions(text, "torch_nets.py")
    (root / "cs_layers" / "torch_nets.py").write_text(text)
    if weights:
        (root / "assignments/convnets").mkdir(parents=True)
        tn.save_challenge(model, "digits", root / torch_cases.CHALLENGE_FILE)
    return root


def _grade(sub, suite, tmp_path):
    work = tmp_path / f"work-{sub.name}"
    return {r.task: r for r in torch_cases.grade_torch(sub, suite, workdir=work)}


def test_suite_covers_every_torch_task_with_odd_batches(setup):
    suite, _ = setup
    cases = suite.torch.cases
    assert {c.task for c in cases} == set(TASKS)
    assert any("float32" in c.label for c in cases) and any("float64" in c.label for c in cases)
    assert any("batch of 1" in c.label or "x 1x" in c.label or "batch of 3" in c.label for c in cases)
    assert all(c.expected for c in cases), "every case has expected outputs"
    challenge = [c for c in cases if c.task == "task3_5"][0]
    assert set(challenge.arrays) == {"X_digits", "X_cifar10", "X_patterns"}, "held-out labels never go into the sandbox"
    assert set(challenge.params) == {"weights_file", "max_params"}


@pytest.mark.slow
def test_reference_full_marks_and_stub_scores_nothing(setup, tmp_path):
    suite, model = setup
    got = _grade(_submission(tmp_path / "ref", model), suite, tmp_path)
    assert [got[t].status for t in TASKS] == ["passed"] * 5, {t: got[t].message for t in TASKS}
    assert all(got[t].score == got[t].max_score > 0 for t in TASKS)
    assert "accuracy 1.000" in got["task3_5"].message
    stub = _grade(_submission(tmp_path / "stub", model, stub=True), suite, tmp_path)
    assert {t: stub[t].status for t in TASKS} == {t: "missing" for t in TASKS}, \
        {t: stub[t].message for t in TASKS}
    assert sum(r.score for r in stub.values()) == 0
    assert "task3_1: implement" in stub["task3_1"].message


@pytest.mark.slow
def test_wrong_code_loses_only_its_own_task(setup, tmp_path):
    suite, model = setup
    sub = _submission(tmp_path / "wrong", model, weights=False)
    append_patch(sub, "torch_nets.py", wrap("random_weight", """
        w = _orig(*args, **kwargs)
        with torch.no_grad():
            w *= 1.5  # std 50% too large
        return w
    """))
    append_patch(sub, "torch_nets.py", wrap("sequential_convnet", """
        model = _orig(*args, **kwargs)
        return nn.Sequential(*[m for m in model if not isinstance(m, nn.ReLU)])
    """))
    got = _grade(sub, suite, tmp_path)
    # random_weight is used by three_layer_convnet_params too: both barebones tasks lose its cases
    assert got["task3_1"].status == "failed" and "Kaiming" in got["task3_1"].message
    assert got["task3_2"].status == "failed" and 0 < got["task3_2"].score < got["task3_2"].max_score
    assert got["task3_3"].status == "passed"
    assert got["task3_4"].status == "failed" and "sequential_convnet" in got["task3_4"].message
    assert got["task3_5"].status == "missing" and "challenge_model.pt" in got["task3_5"].message


@pytest.mark.slow
def test_challenge_file_problems_get_clear_statuses(setup, tmp_path):
    suite, model = setup
    sub = _submission(tmp_path / "bad", model, weights=False)
    (sub / "assignments/convnets").mkdir(parents=True)
    torch.save(model.state_dict(), sub / torch_cases.CHALLENGE_FILE)  # no "dataset": not save_challenge
    got = _grade(sub, suite, tmp_path)["task3_5"]
    assert got.status == "error" and "save_challenge" in got.message and got.score == 0
    other = _submission(tmp_path / "other", model, weights=False)
    (other / "assignments/convnets").mkdir(parents=True)
    torch.manual_seed(1)
    tn.save_challenge(tn.challenge_model("digits"), "digits", other / torch_cases.CHALLENGE_FILE)
    got = _grade(other, suite, tmp_path)["task3_5"]
    assert got.status == "failed" and "accuracy" in got.message and got.score < got.max_score


def test_oversized_or_linked_weights_are_refused_before_the_sandbox(tmp_path):
    sub = tmp_path / "s"
    (sub / "assignments/convnets").mkdir(parents=True)
    (sub / torch_cases.CHALLENGE_FILE).symlink_to("/etc/passwd")
    r = torch_cases.stage_weights(sub, tmp_path / "w1")
    assert r.status == "rejected" and "regular file" in r.message
    (sub / torch_cases.CHALLENGE_FILE).unlink()
    (sub / torch_cases.CHALLENGE_FILE).write_bytes(b"x" * 100)
    r = torch_cases.stage_weights(sub, tmp_path / "w2", max_bytes=10)
    assert r.status == "rejected" and "smaller challenge model" in r.message


@pytest.mark.slow
def test_scores_do_not_depend_on_a_visible_gpu(setup, tmp_path, monkeypatch):
    """The same correct submission, graded with CUDA hidden and with a (faked) GPU visible."""
    suite, model = setup
    sub = _submission(tmp_path / "dev", model)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    hidden = _grade(sub, suite, tmp_path / "cpu")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    _, heldout = _heldout()
    gpu_suite = hidden_tests.Suite([], dict(hidden_tests.TASK_POINTS))
    gpu_suite.torch = torch_cases.build_suite(b"torch-grading-seed", heldout=heldout)
    visible = _grade(sub, gpu_suite, tmp_path / "gpu")
    assert {t: (r.score, r.status) for t, r in hidden.items()} == \
        {t: (r.score, r.status) for t, r in visible.items()}
    assert all(r.status == "passed" for r in visible.values())


def test_kaiming_check_messages():
    target = np.full((400, 300), np.sqrt(2 / 400))
    rng = np.random.default_rng(0)
    assert torch_cases.kaiming(rng.standard_normal((400, 300)) * np.sqrt(2 / 400), target, 0.1)[0]
    ok, why = torch_cases.kaiming(rng.standard_normal((400, 300)), target, 0.1)
    assert not ok and "sqrt(2 / fan_in)" in why
    ok, why = torch_cases.kaiming(rng.standard_normal((400, 300)) * 0.07 + 0.05, target, 0.1)
    assert not ok and "mean" in why
