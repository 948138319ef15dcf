"""Feedback HTML: escaped, shows status/score/message/tolerance, never hidden values."""
from __future__ import annotations

import numpy as np

from grading import feedback
from grading.results import TaskResult


def _results():
    return [
        TaskResult("task2_2", 10.0, 10.0, "passed", "all 6 hidden cases match", 1e-7),
        TaskResult("task2_3", 0.0, 10.0, "failed",
                   "relative error 3.2e-02 > 1e-07 on a hidden case with stride 2, pad 1, kernel 3x5",
                   1e-7),
        TaskResult("task2_4", 0.0, 5.0, "timeout", "ran past the 10 s wall-clock limit"),
    ]


def test_page_shows_each_task_status_score_message_and_tolerance():
    page = feedback.render("s001", _results())
    for text in ("task2_2", "task2_3", "task2_4", "passed", "failed", "timeout", "10 / 10",
                 "0 / 5", "1e-07", "stride 2, pad 1, kernel 3x5", "Total: 10 / 25"):
        assert text in page, f"feedback page lacks {text!r}"


def test_everything_is_html_escaped():
    evil = "<script>alert('x')</script>"
    page = feedback.render(evil, [TaskResult("task2_1", 0.0, 1.0, "error", evil)], note=evil)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_array_dumps_in_messages_are_redacted():
    rng = np.random.default_rng(0)
    expected = rng.standard_normal((2, 3))
    msg = f"expected {expected} but got {expected.tolist()} at index (0, 1), shape (2, 3, 4)"
    page = feedback.render("s1", [TaskResult("task2_2", 0.0, 10.0, "failed", msg, 1e-7)])
    for value in expected.ravel():
        assert f"{value:.4f}"[:6] not in page, "a hidden value leaked into the feedback"
    assert "[values hidden]" in page
    assert "index (0, 1), shape (2, 3, 4)" in page  # indices and shapes are not array dumps


def test_long_messages_are_truncated():
    page = feedback.render("s1", [TaskResult("task2_2", 0.0, 1.0, "error", "x" * 10_000)])
    assert "x" * (feedback.MAX_MESSAGE_CHARS + 1) not in page


def test_write_feedback_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "feedback" / "s1.html"
    feedback.write_feedback(path, "s1", _results())
    assert path.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in path.parent.iterdir()] == ["s1.html"]
