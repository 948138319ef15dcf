"""The student README (the release's README.md) says true things.

- every `bash setup_gpu.sh ...` command in it runs (on a fake GPU machine, --dry-run);
  every option it names exists; the section the script points to exists;
- the CPU-torch path: once a CPU build of torch is installed, the README's next command
  (`pip install -r requirements.txt`) keeps it instead of pulling the CUDA build;
- the tunnel port is the script's default port.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_setup_gpu import LSPCI_NONE, machine  # noqa: F401  (machine is a fixture)

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "docs" / "student_README.md").read_text(encoding="utf-8")
SCRIPT = (ROOT / "setup_gpu.sh").read_text(encoding="utf-8")


def test_the_section_setup_gpu_points_to_exists_in_the_student_readme():
    pointed = set(re.findall(r"README section ['\"]([^'\"]+)['\"]", SCRIPT))
    assert pointed, "setup_gpu.sh no longer names a README section"
    headings = re.findall(r"^#+ (?:\d+\. )?(.+)$", README, re.MULTILINE)
    for section in pointed:
        assert section in headings, f"setup_gpu.sh points to README section {section!r}; headings: {headings}"


def test_launch_jupyter_is_what_starts_jupyter():
    assert "--launch-jupyter" in README
    assert not re.search(r"`bash setup_gpu.sh`[^.]*starts Jupyter", README)


def _script_commands():
    return sorted({m.strip() for m in re.findall(r"bash setup_gpu\.sh([^`\n#]*)", README)})


def test_every_option_the_readme_names_is_in_help(machine):  # noqa: F811
    help_text = machine("--help").stdout
    options = set(re.findall(r"(--[a-z][a-z-]+)", " ".join(_script_commands())))
    assert options >= {"--launch-jupyter", "--dry-run", "--help"}
    for opt in options:
        assert opt in help_text, f"the README names setup_gpu.sh {opt}, which --help does not list"


def test_every_setup_gpu_command_in_the_readme_runs_dry_on_a_machine_without_gpu(machine):  # noqa: F811
    for args in _script_commands():
        argv = args.split()
        if "--help" in argv:
            continue
        proc = machine(*argv, *([] if "--dry-run" in argv else ["--dry-run"]), "--cpu", lspci=LSPCI_NONE)
        assert proc.returncode == 0, f"bash setup_gpu.sh {args} --dry-run:\n{proc.all[-2000:]}"


def test_tunnel_port_is_the_default_port():
    default = re.search(r'^PORT="?(\d+)"?', SCRIPT, re.MULTILINE)
    assert default, "setup_gpu.sh has no PORT default"
    for local, remote in re.findall(r"-L (\d+):localhost:(\d+)", README):
        assert local == remote == default.group(1)


def test_the_cpu_torch_path_is_kept_by_the_requirements_install():
    import torch
    if "+cpu" not in torch.__version__:
        pytest.skip(f"torch {torch.__version__} is not a CPU build here")
    cpu_cmd = re.search(r"`(pip install torch==[^`]+--index-url https://download\.pytorch\.org/whl/cpu)`", README)
    assert cpu_cmd and "torch==2.13.0" in cpu_cmd.group(1)
    assert "torch==2.13.0\n" in (ROOT / "requirements.txt").read_text(encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--quiet",
                           "--report", "-", "torch==2.13.0"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    installs = [i["metadata"]["name"] for i in json.loads(proc.stdout)["install"]]
    assert installs == [], f"pip would replace the installed CPU torch: {installs}"
