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


def test_the_notebook_runs_kernel_talks_over_unix_sockets_without_a_warning(tmp_path, capfd):
    import nbformat
    from nbclient import NotebookClient

    from bench import notebooks

    ask = "import json, ipykernel; json.load(open(ipykernel.get_connection_file()))['transport']"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(ask)])
    sockets = tmp_path / "k"
    sockets.mkdir()
    NotebookClient(nb, timeout=60, kernel_name="python3", config=notebooks.kernel_config(sockets)).execute()
    assert nb.cells[0].outputs[0]["data"]["text/plain"] == "'ipc'"
    assert "without encryption" not in capfd.readouterr().err  # ipykernel's TCP warning, in make demo
