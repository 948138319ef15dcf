"""tests/session.py: an artefact is made once per run, also when two xdist workers ask for it."""
import types

import pytest

import session


def _worker(tmp_path, name):
    base = tmp_path / name
    base.mkdir(exist_ok=True)
    return types.SimpleNamespace(getbasetemp=lambda: base)


def test_the_second_worker_loads_what_the_first_made_and_a_failure_is_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    monkeypatch.setattr(session, "_made", {})
    made = []

    def make(folder):
        made.append(folder)
        (folder / "artefact").write_text("x")
        return {"path": folder / "artefact"}

    first = session.once(_worker(tmp_path, "popen-gw0"), "thing", make)
    session._made.clear()  # what a second worker process starts with
    second = session.once(_worker(tmp_path, "popen-gw1"), "thing", make)
    assert len(made) == 1 and first == second and second["path"].read_text() == "x"
    assert made[0].parent == tmp_path  # the run's shared folder, not a worker's own

    def broken(folder):
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError):
        session.once(_worker(tmp_path, "popen-gw0"), "other", broken)
    assert session.once(_worker(tmp_path, "popen-gw1"), "other", make)["path"].is_file()
