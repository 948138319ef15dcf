"""OUT is an nbgrader 0.9.6 course folder whose totals agree with grades.csv.

One autograde OUT folder is built for the module from the real template (nbgrader
generate_assignment over the source notebooks) and hand-made notebook outcomes (no kernel
runs): alice ran both notebooks with full automatic points, bob's first notebook crashed
and his second got half, carol handed in no notebook. Then:
- nbgrader's own gradebook totals equal the sum of grades.csv's nb: rows, per student;
- NbGraderAPI (what formgrader serves) lists the assignment, both submissions and the
  manual-grading queue, and so does `jupyter server` at /formgrader/api/...;
- `nbgrader export` writes nbgrader_grades.csv and leaves grades.csv alone;
- `python -m grading collect-manual OUT` merges hand-graded answers into grades.csv.
"""
from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from grading import autograde, gradebook, notebooks
from grading.notebooks import Outcome
from grading.results import TaskResult

from session import seed_template

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # needs the nbgrader template (built once per session)


def _outcomes(template):
    release = template.root / "release" / "convnets"

    def scores(nb, frac):
        return {g: (None if c.manual else c.points * frac)
                for g, c in template.cells[nb].items() if c.grade}

    def ran(nb, frac):
        path = release / f"{nb}.ipynb"
        return Outcome(nb, "ok", "", scores(nb, frac), 1.0, autograded=path, submitted=path)

    return {"alice": [ran("ConvolutionalNetworks", 1.0), ran("PyTorch", 1.0)],
            "bob": [Outcome("ConvolutionalNetworks", "error", "the kernel died",
                            submitted=release / "ConvolutionalNetworks.ipynb"),
                    ran("PyTorch", 0.5)],
            "carol": [Outcome(nb, "missing", "not handed in") for nb in notebooks.NOTEBOOKS]}


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("course") / "out"
    (out / "results").mkdir(parents=True)
    seed_template(tmp_path_factory, out)
    template = notebooks.get_template(out / ".nbgrader_template")
    seed = os.urandom(32)
    (out / autograde.SEED_FILE).write_text(seed.hex() + "\n")
    records = {}
    for sid, outcomes in _outcomes(template).items():
        gradebook.record(out, template, sid, outcomes)
        results = [TaskResult(t, m / 2, m, "failed", "half") for t, m in autograde.task_layout()
                   if not t.startswith("nb:")]
        for o in outcomes:
            results += notebooks.task_results(o, template.cells[o.notebook])
        results = autograde.conform(results, autograde.task_layout())
        records[sid] = autograde.make_record(sid, results, "", autograde.seed_id(seed), "r", 1.0)
        autograde.write_json_atomic(out / "results" / f"{sid}.json", records[sid])
        records[sid]["results"] = results
    autograde.export(out, records)
    return out


def _csv(out):
    with open(out / "grades.csv", newline="") as f:
        return {(r["student_id"], r["task"]): r for r in csv.DictReader(f)}


def _api(out):
    from nbgrader.apps.api import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(out)).load_config()
    return NbGraderAPI(config=cfg)


def test_gradebook_totals_equal_the_notebook_rows_of_grades_csv(out):
    rows = _csv(out)
    from nbgrader.api import Gradebook

    with Gradebook(gradebook.db_url(out), course_id=gradebook.course_id(out)) as gb:
        for sid in ("alice", "bob", "carol"):
            sub = gb.find_submission(gradebook.ASSIGNMENT, sid)
            nb_rows = [r for (s, t), r in rows.items() if s == sid and t.startswith("nb:")]
            score = sum(float(r["score"]) for r in nb_rows)
            max_score = sum(float(r["max_score"]) for r in nb_rows)
            assert (sub.score, sub.max_score) == pytest.approx((score, max_score)), sid
            # advisory checks (tasks the hidden tests grade) are worth 0 in both
            for nb in sub.notebooks:
                for g in nb.grades:
                    if g.name.startswith("task2_") and not g.name.startswith("task2_12"):
                        assert g.max_score == 0 and (g.score or 0) == 0, g.name
    totals = {sid: sum(float(r["max_score"]) for (s, _), r in rows.items() if s == sid)
              for sid in ("alice", "bob", "carol")}
    assert set(totals.values()) == {sum(m for _, m in autograde.task_layout())}


def test_formgrader_api_lists_the_assignment_submissions_and_manual_queue(out):
    api = _api(out)
    assert [a["name"] for a in api.get_assignments()] == ["convnets"]
    subs = {s["student"]: s for s in api.get_submissions("convnets")}
    assert set(subs) >= {"alice", "bob"}
    assert all(subs[s]["autograded"] and subs[s]["submitted"] for s in ("alice", "bob"))
    assert subs["alice"]["needs_manual_grade"]
    queue = api.get_notebook_submissions("convnets", "ConvolutionalNetworks")
    assert [(q["student"], q["needs_manual_grade"]) for q in queue] == [("alice", True)]
    assert (out / "submitted" / "bob" / "convnets" / "ConvolutionalNetworks.ipynb").is_file()
    release = (out / "release" / "convnets" / "ConvolutionalNetworks.ipynb").read_text()
    assert "### BEGIN SOLUTION" not in release


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyter_server_serves_formgrader_for_out(out):
    """The README's steps: `cd OUT && jupyter server`, then /formgrader (here its JSON API)."""
    port, token = _free_port(), "t" + os.urandom(8).hex()
    jupyter = Path(sys.executable).parent / "jupyter"
    server = subprocess.Popen([str(jupyter), "server", "--no-browser", f"--port={port}",
                               "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
                               "--allow-root"], cwd=out, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)

    def get(path):
        url = f"http://127.0.0.1:{port}{path}?token={token}"
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                get("/api/status")
                break
            except OSError:
                assert server.poll() is None, "jupyter server exited"
                assert time.monotonic() < deadline, "jupyter server did not start in 120 s"
                time.sleep(0.5)
        status, body = get("/formgrader/api/assignments")
        assignments = json.loads(body)
        assert [a["name"] for a in assignments] == ["convnets"]
        assert assignments[0]["num_submissions"] >= 2
        subs = json.loads(get("/formgrader/api/submissions/convnets")[1])
        assert {s["student"] for s in subs} >= {"alice", "bob"}
        queue = json.loads(get("/formgrader/api/submitted_notebooks/convnets/PyTorch")[1])
        assert {q["student"] for q in queue} == {"alice", "bob"}
        assert get("/formgrader/gradebook/convnets/ConvolutionalNetworks")[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_nbgrader_export_never_overwrites_grades_csv(out):
    before = (out / "grades.csv").read_bytes()
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "export"], cwd=out,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "grades.csv").read_bytes() == before
    with open(out / gradebook.EXPORT_CSV, newline="") as f:
        exported = {r["student_id"]: r for r in csv.DictReader(f)}
    assert set(exported) == {"alice", "bob", "carol"}


def _collect(out, *extra):
    return subprocess.run([sys.executable, "-m", "grading", "collect-manual", str(out), *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def test_collect_manual_merges_hand_grades_and_keeps_the_rest(out):
    from nbgrader.api import Gradebook

    before = _csv(out)
    assert before[("alice", "nb:task2_12:manual")]["status"] == "pending"
    proc = _collect(out)
    assert proc.returncode == 0 and "no change" in proc.stdout, proc.stdout + proc.stderr

    with Gradebook(gradebook.db_url(out), course_id=gradebook.course_id(out)) as gb:
        # what formgrader does when the instructor types a score
        for q, score in (("task2_12_q1", 1.5), ("task2_12_q2", 2.0), ("task2_12_q3", 2.0),
                         ("task2_12_q4", 2.0)):
            gb.find_grade(q, "ConvolutionalNetworks", "convnets", "alice").manual_score = score
        gb.db.commit()
    grades = out / "grades.csv"
    stamp = grades.stat().st_mtime_ns
    dry = _collect(out, "--dry-run")
    assert dry.returncode == 0 and "alice nb:task2_12:manual: pending 0/8 -> graded 7.5/8" \
        in dry.stdout, dry.stdout + dry.stderr
    assert grades.stat().st_mtime_ns == stamp

    proc = _collect(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "alice nb:task2_12:manual: pending 0/8 -> graded 7.5/8" in proc.stdout
    after = _csv(out)
    assert after[("alice", "nb:task2_12:manual")] == {
        "student_id": "alice", "task": "nb:task2_12:manual", "score": "7.5", "max_score": "8",
        "status": "graded"}
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {("alice", "nb:task2_12:manual")}, changed  # everything else kept
    assert after[("alice", "nb:task3_5:manual")]["status"] == "pending"  # not graded yet
    assert "graded by hand" in (out / "feedback" / "alice.html").read_text()
    assert not list(out.glob(".grades.*.tmp"))
    again = _collect(out)
    assert "no change" in again.stdout
