"""The Python versions the docs promise install from requirements.txt.

The promise lives in one place, pyproject.toml: requires-python gives the
minimum and the "Programming Language :: Python :: 3.X" classifiers list every
supported version. These tests check that the Makefile, setup_gpu.sh and the
READMEs say the same, and resolve the pinned requirements for every listed
version with pip (`--dry-run --python-version`, metadata only, no wheel bodies),
so a claim and the pins cannot disagree again.

pip evaluates the `python_version` markers of a requirements file against the
interpreter it runs under, not against --python-version, so each version gets
its own requirements file with the markers evaluated here (by `packaging`, as
pip does) before pip resolves it for that version.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # tomllib is 3.11+: read it with re


def claimed_versions():
    found = re.findall(r'^\s*"Programming Language :: Python :: (3\.\d+)",?$', PYPROJECT, re.MULTILINE)
    return sorted(found, key=lambda v: int(v.split(".")[1]))


def pins_for(version):
    """requirements.txt as pip sees it on Python `version`: the lines whose markers hold, markers removed."""
    env = {"python_version": version, "python_full_version": version + ".0"}
    out = []
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(env):
                req.marker = None
                out.append(str(req))
    return out


def test_claims_agree_everywhere():
    versions = claimed_versions()
    assert len(versions) >= 4 and versions[0] == "3.10", f"pyproject classifiers list {versions}"
    low, high = versions[0], versions[-1]
    minors = [int(v.split(".")[1]) for v in versions]
    assert minors == list(range(minors[0], minors[-1] + 1)), f"a gap in the supported versions: {versions}"
    assert re.search(rf'^requires-python = ">={re.escape(low)}"$', PYPROJECT, re.MULTILINE)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"sys.version_info >= (3, {minors[0]})" in makefile and f"{low} to {high}" in makefile
    setup = (ROOT / "setup_gpu.sh").read_text(encoding="utf-8")
    assert f"py_minor < {minors[0]}" in setup and f"Python {low} or newer is needed" in setup
    assert f"Python {low} to {high}" in setup
    for doc in ("README.md", "docs/student_README.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        assert f"Python {low} to {high}" in text, f"{doc} must state the supported range {low} to {high}"
        claims = set(re.findall(r"Python (3\.\d+)(\+| or newer| to 3\.\d+)", text))
        for v, rest in claims:
            assert v == low and rest in (" or newer", f" to {high}"), f"{doc} claims Python {v}{rest}"


def test_every_claimed_version_gets_one_pin_per_package():
    for version in claimed_versions():
        names = [Requirement(r).name for r in pins_for(version)]
        assert len(names) == len(set(names)), f"Python {version}: a package is pinned twice: {names}"
        assert all("==" in r for r in pins_for(version)), f"Python {version}: unpinned lines"
        assert "torch==2.13.0" in pins_for(version)


def _network_or_skip():
    proc = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "tqdm"],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 and not os.environ.get("CI"):
        pytest.skip("the package index is not reachable (this test runs in CI, which has PyPI)")


@pytest.mark.slow
def test_pinned_requirements_resolve_for_every_claimed_version(tmp_path):
    _network_or_skip()
    procs = {}
    for version in claimed_versions():  # one pip per version, all at once (each mostly waits on the index)
        req = tmp_path / f"requirements-{version}.txt"
        req.write_text("\n".join(pins_for(version)) + "\n", encoding="utf-8")
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
               "--python-version", version, "--only-binary=:all:", "--target", str(tmp_path / f"t{version}"),
               "--report", str(tmp_path / f"report-{version}.json"), "-r", str(req)]
        procs[version] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    failures = []
    for version, proc in procs.items():
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            kept = "\n".join(line for line in out.splitlines() if "Location" not in line)
            failures.append(f"Python {version}:\n" + kept[-2000:])
            continue
        report = json.loads((tmp_path / f"report-{version}.json").read_text(encoding="utf-8"))
        got = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in report["install"]}
        for pin in pins_for(version):
            name, want = pin.split("==")
            have = got.get(canonicalize_name(name), "")
            assert have.split("+")[0] == want, f"Python {version}: {name} resolved to {have!r}, pinned {want}"
    assert not failures, "requirements.txt does not resolve for:\n" + "\n\n".join(failures)


def test_the_grading_venvs_go_without_rfc3987_syntax():
    """`make venv` and the Gradescope setup.sh remove rfc3987-syntax (pulled in by jupyter-events):
    with it, importing nbformat compiles its grammars, about 3 CPU-seconds in each student's
    nbgrader run. This test runs in the venv `make` built."""
    from grading import gradescope

    assert "pip uninstall --yes rfc3987-syntax" in gradescope.SETUP_SH
    proc = subprocess.run([sys.executable, "-c", "import sys, nbformat; "
                           "print(sorted(m for m in sys.modules if m.startswith('rfc3987')))"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", (f"{sys.executable} imports {proc.stdout.strip()} with nbformat: "
                                         "run `make venv` again after deleting .venv")
