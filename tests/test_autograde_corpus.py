"""The autograde orchestration: fast checks with a fake grading core, then the hostile corpus.

The fast tests replace `grading.hidden_tests` by a tiny fake so they exercise discovery,
the secret seed, parallel grading, atomic per-student results, --resume, grades.csv and the
feedback pages in a second. The `slow` tests run the real grader on tests/corpus.py.
"""
from __future__ import annotations

import csv
import json
import os
import stat
import time
import types
import zipfile

import pytest

from grading import autograde
from grading.results import TaskResult


# ---------------------------------------------------------------- fake grading core

def _fake_grade_module(student_dir, suite, *, workdir, limits=None):
    src = student_dir / "cs_layers" / "layers.py"
    if not src.is_file():
        return [TaskResult("task2_1", 0.0, 10.0, "missing", "cs_layers/layers.py is missing")]
    text = src.read_text()
    if "BOOM" in text:
        raise RuntimeError("grader bug")
    if "DIE" in text:
        os._exit(3)  # the grading process itself dies
    if "SLOW" in text:
        time.sleep(0.5)
    ok = "WRONG" not in text and suite == b"s" * 32
    return [TaskResult("task2_1", 10.0 if ok else 0.0, 10.0, "passed" if ok else "failed",
                       "ok" if ok else "relative error 1e-01 > 1e-07", 1e-7)]


def _fake_grade_model(npz_path, *, data=None):
    if npz_path is None:
        return TaskResult("task2_9", 0.0, 5.0, "missing", "convnet_model.npz is missing")
    return TaskResult("task2_9", 5.0, 5.0, "passed", "accuracy 0.95 >= 0.90")


@pytest.fixture
def fake_core(monkeypatch):
    fake = types.SimpleNamespace(TASK_POINTS={"task2_1": 10.0, "task2_9": 5.0},
                                 build_suite=lambda seed: seed,
                                 grade_module=_fake_grade_module, grade_model=_fake_grade_model)
    monkeypatch.setattr(autograde, "_hidden_tests", lambda: fake)
    return fake


def _student(root, sid, layers="x = 1\n", model=True):
    sub = root / sid
    (sub / "cs_layers").mkdir(parents=True)
    (sub / "cs_layers" / "layers.py").write_text(layers)
    if model:
        (sub / "assignments/convnets").mkdir(parents=True)
        (sub / "assignments/convnets/convnet_model.npz").write_bytes(b"npz")
    return sub


def _rows(out):
    with open(out / "grades.csv", newline="") as f:
        return list(csv.DictReader(f))


def _statuses(out):
    got: dict = {}
    for row in _rows(out):
        got.setdefault(row["student_id"], {})[row["task"]] = row["status"]
    return got


def test_class_is_graded_with_every_outcome(tmp_path, fake_core, capsys):
    subs = tmp_path / "subs"
    _student(subs, "alice")
    _student(subs, "bob", layers="WRONG\n", model=False)
    _student(subs, "carol", layers="BOOM\n")
    _student(subs, "dave", layers="DIE\n")
    zsrc = _student(tmp_path / "z", "erin")
    with zipfile.ZipFile(subs / "erin.zip", "w") as zf:
        for p in zsrc.rglob("*"):
            if p.is_file():
                zf.write(p, p.relative_to(zsrc).as_posix())
    (subs / "frank.zip").write_bytes(b"not a zip")
    _student(subs, "bad id")
    _student(subs, "gina")
    (subs / "gina.zip").write_bytes(b"PK")
    (subs / "notes.txt").write_text("hi")
    seed = tmp_path / "seed"
    seed.write_bytes(b"s" * 32)
    out = tmp_path / "out"

    assert autograde.main([str(subs), "--out", str(out), "--jobs", "2", "--seed-file", str(seed),
                           "--quiet"]) == 0

    got = _statuses(out)
    assert got == {
        "alice": {"task2_1": "passed", "task2_9": "passed", "nb:ConvolutionalNetworks": "missing",
                  "nb:PyTorch": "missing"},
        "bob": {"task2_1": "failed", "task2_9": "missing", "nb:ConvolutionalNetworks": "missing",
                "nb:PyTorch": "missing"},
        "carol": {"task2_1": "error", "task2_9": "passed", "nb:ConvolutionalNetworks": "missing",
                  "nb:PyTorch": "missing"},
        "dave": {"task2_1": "error", "task2_9": "error"},
        "erin": {"task2_1": "passed", "task2_9": "passed", "nb:ConvolutionalNetworks": "missing",
                 "nb:PyTorch": "missing"},
        "frank": {"task2_1": "rejected", "task2_9": "rejected"},
        "gina": {"task2_1": "rejected", "task2_9": "rejected"},
    }
    rows = _rows(out)
    assert list(rows[0]) == ["student_id", "task", "score", "max_score", "status"]
    crashed = [r for r in rows if r["status"] not in ("passed", "failed")]
    assert all(r["status"] in ("error", "missing", "rejected") for r in crashed)
    printed = capsys.readouterr()
    assert "skipped 'bad id'" in printed.out and "skipped notes.txt" in printed.out
    assert "alice" in printed.out and "legend" in printed.out
    assert "internal error in module grading" in (out / "results" / "carol.json").read_text()
    for sid in got:
        page = (out / "feedback" / f"{sid}.html").read_text()
        assert sid in page
    assert "corrupt" in (out / "feedback" / "frank.html").read_text()
    assert "died twice" in (out / "results" / "dave.json").read_text()
    assert stat.S_IMODE(os.stat(out / ".secret_seed").st_mode) == 0o600
    assert not list((out / "results").glob(".*.tmp")), "a temporary result file was left behind"


def test_resume_keeps_finished_students_and_grades_the_rest(tmp_path, fake_core):
    subs = tmp_path / "subs"
    for sid in ("s1", "s2", "s3"):
        _student(subs, sid)
    out = tmp_path / "out"
    (out / "results").mkdir(parents=True)
    assert autograde.main([str(subs), "--out", str(out), "--jobs", "1", "--quiet"]) == 0
    first = {p.name: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    # s3 "was killed mid-write": its record is partial; s4 is new.
    (out / "results" / "s3.json").write_text('{"complete": tru')
    _student(subs, "s4")

    with pytest.raises(SystemExit):  # without --resume, existing results are never overwritten
        autograde.main([str(subs), "--out", str(out), "--quiet"])
    assert autograde.main([str(subs), "--out", str(out), "--resume", "--quiet"]) == 0

    after = {p.name: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    assert set(after) == {"s1.json", "s2.json", "s3.json", "s4.json"}
    for name in ("s1.json", "s2.json"):
        assert after[name]["run_id"] == first[name]["run_id"], f"{name} was regraded"
    assert after["s3.json"]["run_id"] != first["s1.json"]["run_id"]
    assert after["s3.json"]["seed_id"] == first["s1.json"]["seed_id"], "resume changed the seed"
    assert len(_statuses(out)) == 4


def test_resume_refuses_a_different_seed(tmp_path, fake_core):
    subs = tmp_path / "subs"
    _student(subs, "s1")
    out = tmp_path / "out"
    assert autograde.main([str(subs), "--out", str(out), "--quiet"]) == 0
    other = tmp_path / "seed"
    other.write_bytes(os.urandom(32))
    with pytest.raises(SystemExit, match="differs"):
        autograde.main([str(subs), "--out", str(out), "--resume", "--seed-file", str(other)])


def test_student_ids_must_be_safe_names(tmp_path):
    for bad in ("..", ".hidden", "a b", "a/b", "ä", "x" * 65, "-rf"):
        assert not autograde.STUDENT_ID.match(bad), bad
    for good in ("s001", "jane.doe", "A-1_b"):
        assert autograde.STUDENT_ID.match(good), good
