"""The public checks never fail on correct code.

Students run tests/public through `python -m cs_layers.check` and `submit`;
a false failure there costs them hours. The shipped profile is derandomized
(tests/conftest.py), so a student always sees the same examples; this test
runs the whole public suite on the reference solutions with *random* examples
for several fixed seeds (profile "explore", no example database) and demands
zero failures, so no tolerance is tuned to the one derandomized draw.

Only the property tests (@given) draw examples from the seed; every other public test draws
nothing from it and runs exactly as in the suite's own run of tests/public, so the seeded
runs select the property tests alone.
"""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [1, 2, 3]


def property_tests():
    """Node ids (file::function) of the public tests decorated with hypothesis' @given."""
    found = []
    for path in sorted((ROOT / "tests" / "public").glob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(d, ast.Call) and getattr(d.func, "id", getattr(d.func, "attr", None)) == "given"
                    for d in node.decorator_list):
                found.append(f"{path}::{node.name}")
    return found


def test_property_tests_are_found():
    found = property_tests()
    given = sum(p.read_text(encoding="utf-8").count("\n@given(") for p in (ROOT / "tests" / "public").glob("test_*.py"))
    assert len(found) == given >= 20, f"{given} @given decorators in tests/public, {len(found)} tests found: {found}"


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_public_suite_passes_on_the_reference_for_random_seeds(seed, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *property_tests(), "-q", "-p", "no:cacheprovider",
         "--hypothesis-profile=explore", f"--hypothesis-seed={seed}", "-x", "--tb=short"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"public suite failed with --hypothesis-seed={seed}:\n{proc.stdout[-4000:]}"
    ran = re.search(r"(\d+) passed", proc.stdout)
    assert ran and int(ran.group(1)) >= len(property_tests()), proc.stdout[-2000:]
    # hypothesis may keep a cache of constants in .hypothesis/constants; examples/ is the database
    assert not (tmp_path / ".hypothesis" / "examples").exists(), "the public suite wrote an example database"


def test_shipped_profile_is_deterministic_and_keeps_no_database():
    from hypothesis import settings
    for name in ("default", "ci"):
        profile = settings.get_profile(name)
        assert profile.derandomize and profile.database is None, name
