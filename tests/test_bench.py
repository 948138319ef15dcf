"""Smoke tests of the benchmark commands (their output, never their speed)."""
import pytest

from bench import train_epoch


@pytest.mark.slow
def test_train_epoch_prints_times_memory_and_verdicts(capsys):
    train_epoch.main(["--fraction", "0.003", "--blocks", "2", "--threads", "1", "--cpu-time"])
    out = capsys.readouterr().out
    assert "load average" in out and "blas:" in out  # machine, kernel and threads are stated
    assert "no verdict, < 9 blocks" in out  # fewer than 9 blocks: no PASS/MISS on the ratio
    assert "numpy peak allocations while training" in out and "target < 2048 MiB" in out
