"""The release, grades.csv and feedback of the example submissions are exactly the golden record.

A refactor must leave what students and instructors get unchanged. After a deliberate change,
regenerate the record (`.venv/bin/python tests/golden.py --write`) and commit it with the
change; see tests/golden.py.
"""
import json

import pytest

import golden
from session import release_tree


@pytest.mark.slow
def test_release_grades_and_feedback_match_the_golden_record(tmp_path_factory):
    """The release hashed is the session's (tests/session.py: grading.release.build, which
    `python -m grading release` calls), so it is built once per run."""
    stored = json.loads(golden.RECORD.read_text(encoding="utf-8"))
    changes = golden.diff(stored, golden.compute(release=release_tree(tmp_path_factory)))
    assert not changes, ("differs from tests/golden_record.json (if deliberate, regenerate it with "
                         "`.venv/bin/python tests/golden.py --write`):\n" + "\n".join(changes))


def test_diff_names_every_kind_of_change():
    old = {"release": {"a.py": "1", "b.py": "2"}, "grades_csv": ["h", "x,1"], "feedback": {"x.html": ["p"]}}
    new = {"release": {"a.py": "9", "c.py": "3"}, "grades_csv": ["h", "x,0"], "feedback": {"x.html": ["q"]}}
    assert golden.diff(old, old) == []
    assert golden.diff(old, new) == ["release: a.py changed", "release: b.py removed", "release: c.py added",
                                     "grades.csv: - x,1", "grades.csv: + x,0", "feedback: x.html differs"]
