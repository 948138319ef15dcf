"""Gradescope autograder bundle, and the entry point it runs.

    python -m grading gradescope OUT.zip      # build the bundle; upload OUT.zip to Gradescope

The zip holds, at its root (Gradescope unpacks it into /autograder/source):
    setup.sh            installs Python + requirements into /opt/cs_layers_venv, creates the
                        unprivileged account, closes /autograder/source to everyone but root
    run_autograder      runs `python -m grading.gradescope run` (this same grader)
    requirements.txt, cs_layers/ (the instructor's reference), grading/, datasets/digits.npz,
    assignments/convnets/*.ipynb, nbgrader_config.py

`run_autograder` grades the one submission in $ROOT/submission (a folder laid out like the
release, or a folder holding a single .zip) with fresh hidden inputs, and writes
$ROOT/results/results.json in Gradescope's schema (score, output, tests of
{name, score, max_score, status, output, visibility}); hidden tests are
`after_published`. ROOT is /autograder unless GRADESCOPE_ROOT says otherwise (tests use a
temporary root). Student code runs in grading.sandbox, as on the instructor's machine;
on Gradescope the container plus a throw-away unprivileged uid (files closed to it) are
the isolation when namespaces are not allowed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV = "/opt/cs_layers_venv"
HIDDEN = "after_published"

SETUP_SH = f"""#!/usr/bin/env bash
# Gradescope setup: runs once, as root, when the autograder image is built.
set -euo pipefail
cd /autograder/source
export DEBIAN_FRONTEND=noninteractive
apt-get update
# python3 >= 3.11 (numpy 2.4); util-linux gives unshare/setpriv/prlimit for the sandbox.
apt-get install -y --no-install-recommends python3 python3-venv python3-pip util-linux ca-certificates
# bubblewrap: the preferred sandbox backend (run_autograder falls back to unshare, then to a
# throw-away uid with rlimits, when the container does not allow namespaces).
apt-get install -y --no-install-recommends bubblewrap
python3 -c 'import sys; assert sys.version_info >= (3, 11), "use a Gradescope base image with Python 3.11+ (Ubuntu 24.04)"'
python3 -m venv {VENV}
{VENV}/bin/pip install --no-cache-dir --upgrade pip
# CPU-only torch first (the default Linux wheel pulls several GB of CUDA).
{VENV}/bin/pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \\
    "$(grep -E '^torch==' requirements.txt)"
{VENV}/bin/pip install --no-cache-dir -r requirements.txt
# Only the "iri" format check of jsonschema uses it, and importing nbformat compiles its
# grammars: about 3 CPU-seconds in each student's nbgrader run (see the Makefile).
{VENV}/bin/pip uninstall --yes rfc3987-syntax
# The unprivileged account for student code (the sandbox also uses throw-away uids >= 200000;
# both are "others" to the files below).
id -u cs_student >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin cs_student
# Close the autograder's files (reference solutions, hidden tests) to everyone but root.
chown -R root:root /autograder/source
chmod -R go-rwx /autograder/source
chmod 0711 /autograder
# The venv must stay readable: the sandbox runs the student's code with it.
chmod -R go+rX {VENV}
"""

RUN_AUTOGRADER = f"""#!/usr/bin/env bash
# Gradescope entry point: grade $ROOT/submission, write $ROOT/results/results.json.
set -uo pipefail
ROOT="${{GRADESCOPE_ROOT:-/autograder}}"
PYTHON="${{GRADESCOPE_PYTHON:-{VENV}/bin/python}}"
[ -x "$PYTHON" ] || PYTHON=python3
chmod -R go-rwx "$ROOT/submission" 2>/dev/null || true
cd "$ROOT/source" || {{ echo "no $ROOT/source: is the autograder zip unpacked there?" >&2; exit 1; }}
# --sandbox auto picks the best backend this container allows (bwrap, unshare, or a
# throw-away uid with rlimits); set CS_LAYERS_SANDBOX in the image to force one.
exec "$PYTHON" -m grading.gradescope run --root "$ROOT" --sandbox "${{CS_LAYERS_SANDBOX:-auto}}"
"""

BUNDLE_FILES = ("requirements.txt", "nbgrader_config.py", "datasets/digits.npz",
                "datasets/LICENSE-digits.md")
BUNDLE_GLOBS = ("cs_layers/*.py", "grading/*.py", "grading/*/*.py", "assignments/convnets/*.ipynb")


def bundle_members(repo: Path = REPO_ROOT) -> dict[str, Path]:
    """Archive name -> source file for the bundle (setup.sh / run_autograder added apart)."""
    members = {}
    for rel in BUNDLE_FILES:
        if (repo / rel).is_file():
            members[rel] = repo / rel
    for pattern in BUNDLE_GLOBS:
        for p in sorted(repo.glob(pattern)):
            members[p.relative_to(repo).as_posix()] = p
    for needed in ("requirements.txt", "cs_layers/layers.py", "grading/autograde.py",
                   "grading/hidden_tests/__init__.py"):
        if needed not in members:
            raise FileNotFoundError(f"{repo / needed} is missing; build the bundle from the "
                                    "instructor repository")
    return members


def build_bundle(dest: Path, repo: Path = REPO_ROOT) -> list[str]:
    """Write the autograder zip; returns its member names."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in (("setup.sh", SETUP_SH), ("run_autograder", RUN_AUTOGRADER)):
            info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
            info.external_attr = 0o100755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text)
        for name, src in bundle_members(repo).items():
            zf.write(src, name)
        names = zf.namelist()
    os.replace(tmp, dest)
    return names


# ---------------------------------------------------------------- inside Gradescope

def _submission_path(sub_dir: Path) -> Path:
    """The folder itself, or the single .zip it holds when it has no cs_layers/."""
    if not (sub_dir / "cs_layers").exists():
        zips = [p for p in sub_dir.iterdir() if p.suffix.lower() == ".zip" and p.is_file()]
        if len(zips) == 1:
            return zips[0]
    return sub_dir


def to_results_json(results, note: str = "", *, duration: float = 0.0) -> dict:
    """Gradescope's results.json dict from a list of TaskResult."""
    from grading.feedback import safe_message

    tests = []
    for r in results:
        if r.status == "pending":  # inline questions: graded by hand as Gradescope questions
            continue
        hidden = not r.task.startswith("nb:")
        out = f"[{r.status}] {safe_message(r.message)}"
        if r.tolerance is not None:
            out += f" (tolerance {r.tolerance:.0e})"
        tests.append({"name": r.task, "score": r.score, "max_score": r.max_score,
                      "status": "passed" if r.status == "passed" else "failed",
                      "output": out, "visibility": HIDDEN if hidden else "visible"})
    lines = [note] if note else []
    rejected = [r for r in results if r.status == "rejected"]
    if rejected and all(r.status == "rejected" for r in results):
        lines.append(safe_message(rejected[0].message))
    lines.append("Hidden-test results are shown once grades are published. Check your work "
                 "before submitting with `python -m cs_layers.check`.")
    return {"score": round(sum(r.score for r in results), 4), "execution_time": round(duration),
            "output": "\n".join(lines), "stdout_visibility": "hidden", "tests": tests}


def run(root: Path, sandbox: str = "auto") -> dict:
    """Grade $root/submission; always writes $root/results/results.json."""
    from grading import autograde

    start = time.monotonic()
    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    refused = autograde.use_sandbox(sandbox)
    print(f"sandbox: --sandbox {sandbox}", flush=True)
    print(refused or autograde.layer_report(), flush=True)
    try:
        if refused:
            raise RuntimeError(refused)
        sub = autograde.Submission("submission", _submission_path(root / "submission"))
        suite = autograde.current_grader().build_suite(os.urandom(32))
        results, note = autograde.grade_submission(sub, suite)
        payload = to_results_json(results, note, duration=time.monotonic() - start)
    except Exception:  # the student must still get a result, and the instructor the trace
        traceback.print_exc()
        payload = {"score": 0.0, "output": "The autograder hit an internal error; this is not "
                   "your fault. Your instructor has been told; resubmit later.",
                   "stdout_visibility": "hidden", "tests": []}
    fd, tmp = tempfile.mkstemp(dir=results_dir, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f, indent=1)
    os.replace(tmp, results_dir / "results.json")
    for t in payload["tests"]:
        print(f"{t['name']:<28} {t['score']:>5g}/{t['max_score']:<5g} {t['output'][:100]}")
    return payload


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading gradescope",
                                     description="Build the Gradescope autograder bundle "
                                                 "(or, inside Gradescope: `run`).")
    parser.add_argument("target", help="OUT.zip to build, or `run` (inside Gradescope)")
    parser.add_argument("--root", type=Path,
                        default=Path(os.environ.get("GRADESCOPE_ROOT", "/autograder")),
                        help="Gradescope root for `run` (default $GRADESCOPE_ROOT or /autograder)")
    parser.add_argument("--sandbox", choices=("auto", "bwrap", "unshare", "none", "unsafe"),
                        default="auto", help="sandbox backend for `run` (as in autograde)")
    args = parser.parse_args(argv)
    if args.target == "run":
        run(args.root, args.sandbox)
        return 0
    if not args.target.endswith(".zip"):
        parser.error(f"{args.target} does not end in .zip; pass e.g. out/gradescope.zip")
    names = build_bundle(Path(args.target))
    print(f"wrote {args.target} ({len(names)} files). Upload it as the autograder of a "
          "Gradescope programming assignment (base image: Ubuntu 24.04 or any with Python 3.11+).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
