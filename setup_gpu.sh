#!/usr/bin/env bash
# setup_gpu.sh: take a fresh cloud GPU VM to a verified environment for the PyTorch notebook.
#
#   bash setup_gpu.sh --dry-run          # show the checks and every command it would run
#   bash setup_gpu.sh                    # install into .venv next to this script, then verify
#   bash setup_gpu.sh --launch-jupyter   # ... and start Jupyter on 127.0.0.1 (reach it by SSH tunnel)
#
# Jupyter is never exposed to the internet by default: it binds to 127.0.0.1 with token
# authentication and you reach it through an SSH tunnel. See `--help` and the README section
# "Running on a cloud GPU VM".
set -euo pipefail

# ---- PyTorch builds -------------------------------------------------------------------------
# torch 2.13 ships stable CUDA 12.6 and CUDA 13.0 wheels (13.2 is experimental). CUDA 13.x needs
# driver >= 580 and dropped GPUs below compute capability 7.5 (Maxwell, Pascal, Volta), so:
#   no GPU                          -> CPU build
#   driver < 525                    -> refuse (no CUDA 12 build runs on it)
#   driver 525-579 or compute < 7.5 -> CUDA 12.6 build, torch<2.15 (the last releases with cu126)
#   otherwise                       -> CUDA 13.0 build, the torch pinned in requirements.txt
CPU_INDEX="https://download.pytorch.org/whl/cpu"
LEGACY_CUDA_INDEX="https://download.pytorch.org/whl/cu126"
LEGACY_TORCH_SPEC="torch<2.15"
CURRENT_CUDA_INDEX="https://download.pytorch.org/whl/cu130"
MIN_DRIVER=525          # oldest driver for any CUDA 12.x build
CURRENT_MIN_DRIVER=580  # oldest driver for CUDA 13.x
CURRENT_MIN_COMPUTE=75  # compute capability 7.5, written as major*10+minor
MIN_FREE_GB=10          # CUDA wheels take several GB

# ---- exit codes -----------------------------------------------------------------------------
EXIT_USAGE=2        # bad option, or a refused Jupyter bind address
EXIT_ENV=3          # Python/venv/requirements problem
EXIT_NO_DRIVER=10   # GPU attached but no working driver (or nvidia-smi failed)
EXIT_INSTALLING=11  # the driver is still being installed: wait and run again
EXIT_NO_COMM=12     # "couldn't communicate with the NVIDIA driver": reboot
EXIT_OLD_DRIVER=13  # driver older than 525
EXIT_VERIFY=14      # torch installed but CUDA (or the test matmul) does not work

# ---- paths the tests (or unusual machines) may override -------------------------------------
PYTHON="${PYTHON:-python3}"
SYSFS_PCI="${SETUP_GPU_SYSFS_PCI:-/sys/bus/pci/devices}"
OS_RELEASE="${SETUP_GPU_OS_RELEASE:-/etc/os-release}"
DLVM_DIR="${SETUP_GPU_DLVM_DIR:-/opt/deeplearning}"
METADATA_URL="${SETUP_GPU_METADATA_URL-http://metadata.google.internal/computeMetadata/v1}"
JUPYTER_CFG_DIR="${JUPYTER_CONFIG_DIR:-${HOME:-/root}/.jupyter}"

unset CDPATH  # an exported CDPATH makes `cd` print the folder (and pick another one)
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REQ_FILE="$SCRIPT_DIR/requirements.txt"

usage() {
  cat <<EOF
Usage: bash setup_gpu.sh [options]

Checks this machine (OS, Python, disk, NVIDIA GPU and driver), picks the PyTorch build that
the driver supports, installs it and requirements.txt into a virtual environment, verifies
CUDA with a small matrix multiply, and prints how to reach Jupyter through an SSH tunnel.

Options:
  --help             show this help and exit
  --dry-run          run the read-only checks, print every other command instead of running it
  --venv DIR         virtual environment to create or reuse (default: $SCRIPT_DIR/.venv)
  --cpu              install the CPU build of PyTorch even if a GPU is attached
  --torch-index URL  install torch from this index instead of the one chosen from the driver
  --port N           Jupyter port on the VM and in the tunnel (default: 8888)
  --launch-jupyter   start Jupyter (127.0.0.1, token authentication) at the end
  --ip ADDR          bind Jupyter to ADDR instead of 127.0.0.1; refused unless you also pass
                     --expose-jupyter AND have set a password with 'jupyter server password'
  --expose-jupyter   explicit opt-in for a non-local --ip (not recommended: use the tunnel)

PyTorch build chosen from 'nvidia-smi':
EOF
  printf '  %-44s %-23s %s\n' \
    "no GPU" "CPU build" "$CPU_INDEX" \
    "driver < $MIN_DRIVER" "refused" "update the driver or use a deep-learning image" \
    "driver $MIN_DRIVER-$((CURRENT_MIN_DRIVER - 1)) or compute capability < 7.5" "CUDA 12.6, $LEGACY_TORCH_SPEC" \
    "$LEGACY_CUDA_INDEX" \
    "otherwise" "CUDA 13.0" "$CURRENT_CUDA_INDEX"
  cat <<EOF

Exit codes: 0 ok, $EXIT_USAGE usage or refused bind address, $EXIT_ENV Python/venv/requirements,
  $EXIT_NO_DRIVER driver missing or nvidia-smi failed, $EXIT_INSTALLING driver still installing (wait, rerun),
  $EXIT_NO_COMM driver not reachable (reboot), $EXIT_OLD_DRIVER driver too old, $EXIT_VERIFY CUDA check failed.
EOF
}

# ---- output helpers -------------------------------------------------------------------------
say() { printf '%s\n' "$*"; }
heading() { printf '\n== %s ==\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() {  # die CODE MESSAGE...: explain what went wrong and what to do next, then exit CODE
  local code="$1"
  shift
  printf '\nERROR: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '  %s\n' "$line" >&2; done
  exit "$code"
}
quote() {  # quote ARGS...: the command as one shell-pasteable line
  local out="" arg
  for arg in "$@"; do out+="$(printf '%q' "$arg") "; done
  printf '%s' "${out% }"
}
run() {  # run CMD...: every mutating command goes through here
  if [[ $DRY_RUN == 1 ]]; then
    say "[dry-run] $(quote "$@")"
  else
    say "+ $(quote "$@")"
    "$@"
  fi
}

# ---- options --------------------------------------------------------------------------------
DRY_RUN=0
VENV="$SCRIPT_DIR/.venv"
CPU_ONLY=0
TORCH_INDEX_OVERRIDE=""
PORT=8888
LAUNCH=0
BIND_IP="127.0.0.1"
EXPOSE=0

need_value() { [[ $# -ge 2 && -n $2 ]] || die "$EXIT_USAGE" "$1 needs a value." "See: bash setup_gpu.sh --help"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --dry-run) DRY_RUN=1 ;;
    --cpu) CPU_ONLY=1 ;;
    --launch-jupyter) LAUNCH=1 ;;
    --expose-jupyter) EXPOSE=1 ;;
    --venv | --torch-index | --port | --ip)
      need_value "$@"
      case "$1" in
        --venv) VENV="$2" ;;
        --torch-index) TORCH_INDEX_OVERRIDE="$2" ;;
        --port) PORT="$2" ;;
        --ip) BIND_IP="$2" ;;
      esac
      shift ;;
    --venv=* | --torch-index=* | --port=* | --ip=*)
      set -- "${1%%=*}" "${1#*=}" "${@:2}"
      continue ;;
    *) die "$EXIT_USAGE" "Unknown option: $1" "See: bash setup_gpu.sh --help" ;;
  esac
  shift
done

# Decimal, whatever the leading zeros (bash would read 0080 as octal), and at most 5 significant
# digits, so a huge number is refused instead of wrapping around in 64-bit arithmetic.
if ! [[ $PORT =~ ^0*([1-9][0-9]{0,4})$ ]] || ((10#${BASH_REMATCH[1]} < 1024 || 10#${BASH_REMATCH[1]} > 65535)); then
  die "$EXIT_USAGE" "--port must be a decimal number from 1024 to 65535, got '$PORT'." "Example: --port 8888"
fi
PORT=$((10#${BASH_REMATCH[1]}))
if [[ -n $TORCH_INDEX_OVERRIDE && $TORCH_INDEX_OVERRIDE != https://* ]]; then
  die "$EXIT_USAGE" "--torch-index must be an https:// URL, got '$TORCH_INDEX_OVERRIDE'." \
    "Example: --torch-index $LEGACY_CUDA_INDEX"
fi
[[ $VENV == /* ]] || VENV="$PWD/$VENV"

password_is_set() {  # a hashed password in the Jupyter server config ('jupyter server password')
  local cfg="$JUPYTER_CFG_DIR/jupyter_server_config.json"
  [[ -r $cfg ]] || return 1
  "$PYTHON" - "$cfg" <<'PY' 2>/dev/null
import json, sys
cfg = json.load(open(sys.argv[1]))
keys = [("IdentityProvider", "hashed_password"), ("PasswordIdentityProvider", "hashed_password"),
        ("ServerApp", "password")]
sys.exit(0 if any(cfg.get(a, {}).get(b) for a, b in keys) else 1)
PY
}

# The bind address is checked before anything else: a refused exposure costs nothing.
case "$BIND_IP" in
  127.0.0.1 | localhost | ::1) ;;
  *)
    if [[ $EXPOSE != 1 ]]; then
      die "$EXIT_USAGE" "Refusing to bind Jupyter to $BIND_IP: anyone who can reach this VM could try to take it over." \
        "Use the default (127.0.0.1) and an SSH tunnel; this script prints the tunnel command." \
        "If you really must expose it: set a password with '.venv/bin/jupyter server password'," \
        "open the port only to your own IP in the cloud firewall, and pass --ip $BIND_IP --expose-jupyter."
    fi
    if ! password_is_set; then
      die "$EXIT_USAGE" "Refusing to bind Jupyter to $BIND_IP: no Jupyter password is set" \
        "(looked for a hashed password in $JUPYTER_CFG_DIR/jupyter_server_config.json)." \
        "Set one with '.venv/bin/jupyter server password' and run this again, or use the SSH tunnel."
    fi
    warn "Jupyter will listen on $BIND_IP (password + token). Allow the port only from your own IP."
    ;;
esac
if [[ $EXPOSE == 1 && $BIND_IP == 127.0.0.1 ]]; then
  warn "--expose-jupyter has no effect without --ip ADDR; Jupyter stays on 127.0.0.1."
fi

# ---- cleanup and the stop-the-VM reminder (on every exit from here on) ----------------------
TMP_DIR=""
VM_NAME="YOUR_VM_NAME"
VM_ZONE="YOUR_ZONE"
VM_IP="VM_EXTERNAL_IP"
on_exit() {
  [[ -n $TMP_DIR ]] && rm -rf "$TMP_DIR"
  printf '\nREMINDER: a GPU VM is billed every hour it runs, even idle. When you are done, stop it:\n'
  printf '  gcloud compute instances stop %s --zone %s   (Google Cloud, from your computer)\n' "$VM_NAME" "$VM_ZONE"
  printf '  or the Stop button in your cloud console; or run: sudo shutdown -h now\n'
}
trap on_exit EXIT

[[ $DRY_RUN == 1 ]] && say "DRY RUN: read-only checks run; every command that changes something is printed with [dry-run]."

# ---- read-only checks -----------------------------------------------------------------------
heading "Machine"
os_name="$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$OS_RELEASE" 2>/dev/null || true)"
os_id="$(sed -n 's/^ID="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$OS_RELEASE" 2>/dev/null || true)"
say "OS:       ${os_name:-$(uname -sr)}"

apt_hint="install Python 3.10 to 3.14 and its venv module"
[[ $os_id == ubuntu || $os_id == debian ]] && apt_hint="sudo apt-get update && sudo apt-get install -y python3 python3-venv"
py_version="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" ||
  die "$EXIT_ENV" "Python ($PYTHON) was not found or does not run." "Fix: $apt_hint" \
    "Or point PYTHON at another interpreter: PYTHON=/usr/bin/python3.11 bash setup_gpu.sh"
py_major="${py_version%%.*}"
py_minor="${py_version#*.}"
if ! [[ $py_major =~ ^[0-9]+$ && $py_minor =~ ^[0-9]+$ ]] || ((py_major < 3 || (py_major == 3 && py_minor < 10))); then
  die "$EXIT_ENV" "Python $py_version ($PYTHON) is too old; Python 3.10 or newer is needed." "Fix: $apt_hint" \
    "Or point PYTHON at a newer interpreter: PYTHON=/usr/bin/python3.11 bash setup_gpu.sh"
fi
if [[ -x $VENV/bin/python ]]; then
  say "Python:   $py_version ($PYTHON); reusing the virtual environment $VENV"
elif "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  say "Python:   $py_version ($PYTHON), venv available"
else
  die "$EXIT_ENV" "Python $py_version has no working venv module, so the virtual environment cannot be created." \
    "Fix on Ubuntu/Debian: sudo apt-get install -y python3-venv   (or python$py_version-venv), then run this again."
fi

disk_dir="$VENV"
while [[ ! -d $disk_dir ]]; do disk_dir="$(dirname "$disk_dir")"; done
free_kb="$(df -Pk "$disk_dir" 2>/dev/null | sed -n '2p' | tr -s ' ' | cut -d' ' -f4)"
if [[ $free_kb =~ ^[0-9]+$ ]]; then
  free_gb=$((free_kb / 1048576))
  say "Disk:     ${free_gb} GB free in $disk_dir"
  ((free_gb >= MIN_FREE_GB)) ||
    warn "only ${free_gb} GB free: CUDA wheels take several GB; resize the boot disk to ${MIN_FREE_GB} GB or more if pip runs out of space."
else
  warn "could not read the free disk space of $disk_dir (df failed); continuing."
fi

heading "NVIDIA GPU"
device_attached() {  # an NVIDIA PCI device (vendor 0x10de), whether or not a driver is loaded
  if command -v lspci >/dev/null 2>&1 && lspci 2>/dev/null | grep -qi nvidia; then return 0; fi
  local vendor
  for vendor in "$SYSFS_PCI"/*/vendor; do
    [[ -r $vendor && "$(<"$vendor")" == 0x10de ]] && return 0
  done
  return 1
}
driver_installer_running() {  # prints the installer processes, if any (first boot of a DL image, apt)
  command -v pgrep >/dev/null 2>&1 || return 1
  pgrep -af 'nvidia-installer|install-driver|cuda-installer|dkms|dpkg|apt-get|unattended-upgr' 2>/dev/null | head -n 3
}

DEVICE=no
device_attached && DEVICE=yes
say "Device:   $([[ $DEVICE == yes ]] && echo "NVIDIA device attached" || echo "no NVIDIA device found")"

SMI=absent   # absent | ok | nocomm | error
SMI_OUT=""
GPU_NAME="" DRIVER="" COMPUTE="" GPU_COUNT=0
if command -v nvidia-smi >/dev/null 2>&1; then
  if SMI_OUT="$(nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader 2>&1)"; then
    SMI=ok
  elif [[ $SMI_OUT == *"compute_cap"* ]] &&  # drivers before ~510 cannot report compute_cap
    SMI_OUT="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1)"; then
    SMI=ok
  elif [[ $SMI_OUT == *"couldn't communicate with the NVIDIA driver"* ]]; then
    SMI=nocomm
  else
    SMI=error
  fi
fi
if [[ $SMI == ok ]]; then
  GPU_COUNT="$(printf '%s\n' "$SMI_OUT" | grep -c .)"
  IFS=',' read -r GPU_NAME DRIVER COMPUTE <<<"$(printf '%s\n' "$SMI_OUT" | head -n 1)"
  GPU_NAME="$(echo "$GPU_NAME" | sed 's/^ *//; s/ *$//')"
  DRIVER="$(echo "$DRIVER" | tr -d ' ')"
  COMPUTE="$(echo "${COMPUTE:-}" | tr -d ' ')"
  [[ $COMPUTE =~ ^[0-9]{1,2}\.[0-9]$ ]] || COMPUTE="unknown"  # e.g. 8.9; [N/A] or junk -> unknown
  if ! [[ $DRIVER =~ ^[0-9]{2,4}(\.[0-9]+)*$ ]]; then
    SMI=error
    SMI_OUT="could not read a driver version (like 580.65.06) from nvidia-smi, it printed: $SMI_OUT"
  else
    say "GPU:      $GPU_NAME ($GPU_COUNT GPU(s); the first is used)"
    say "Driver:   $DRIVER"
    say "Compute:  $COMPUTE"
  fi
fi

# ---- the three driver failures, and the build choice ----------------------------------------
install_hint=("On Ubuntu: sudo apt-get update && sudo ubuntu-drivers install && sudo reboot"
  "Or recreate the VM from a deep-learning image (Google Cloud Deep Learning VM, AWS Deep Learning AMI, Lambda Stack).")
if [[ -x $DLVM_DIR/install-driver.sh ]]; then
  install_hint=("This looks like a Google Cloud Deep Learning VM: run  sudo $DLVM_DIR/install-driver.sh  and then this script again.")
fi
gpu_failure() {  # stop with the right explanation when a GPU is attached but unusable
  local installer
  installer="$(driver_installer_running || true)"
  if [[ -n $installer ]]; then
    die "$EXIT_INSTALLING" "The NVIDIA driver is still being installed (normal on the first boot of a deep-learning image)." \
      "Installer processes running now:" "$installer" \
      "Wait a few minutes (until they are gone: pgrep -af 'nvidia-installer|dpkg|apt-get'), then run this again." \
      "If it says the same after 15 minutes, reboot (sudo reboot) and run this again."
  fi
  case "$SMI" in
    nocomm)
      die "$EXIT_NO_COMM" "nvidia-smi couldn't communicate with the NVIDIA driver: the kernel module is not loaded." \
        "This usually follows a kernel upgrade (the driver was built for the old kernel). Fix: sudo reboot," \
        "then run this script again. If it persists after a reboot, reinstall the driver:" "${install_hint[@]}" ;;
    error)
      die "$EXIT_NO_DRIVER" "nvidia-smi failed:" "$SMI_OUT" \
        "Reboot (sudo reboot) and run this again; if it persists, reinstall the driver:" "${install_hint[@]}" ;;
    *)
      die "$EXIT_NO_DRIVER" "An NVIDIA GPU is attached but no NVIDIA driver is installed (nvidia-smi not found)." \
        "${install_hint[@]}" ;;
  esac
}

REQ_TORCH_PIN=""
[[ -r $REQ_FILE ]] && REQ_TORCH_PIN="$(sed -n 's/^[[:space:]]*torch[[:space:]]*==[[:space:]]*\([^[:space:];#]*\).*/\1/p' "$REQ_FILE" | head -n 1)"
PINNED_SPEC="torch${REQ_TORCH_PIN:+==$REQ_TORCH_PIN}"

EXPECT_CUDA=0
if [[ $CPU_ONLY == 1 ]]; then
  [[ $SMI == ok || ($DEVICE == no && $SMI == absent) ]] || warn "the GPU driver is not usable; --cpu given, so installing the CPU build anyway."
  BUILD="CPU (--cpu)" INDEX="$CPU_INDEX" SPEC="$PINNED_SPEC"
elif [[ $SMI == ok ]]; then
  drv_major=$((10#${DRIVER%%.*}))  # decimal: a leading zero must not mean octal
  cc=0
  [[ $COMPUTE != unknown ]] && cc=$((10#${COMPUTE%%.*} * 10 + 10#${COMPUTE#*.}))
  if ((drv_major < MIN_DRIVER)); then
    die "$EXIT_OLD_DRIVER" "NVIDIA driver $DRIVER is too old: PyTorch's CUDA builds need driver $MIN_DRIVER or newer ($CURRENT_MIN_DRIVER+ recommended)." \
      "Update the driver, or use a deep-learning image that ships a current one:" "${install_hint[@]}" \
      "To run on the CPU instead (slow): bash setup_gpu.sh --cpu"
  elif ((drv_major < CURRENT_MIN_DRIVER || cc < CURRENT_MIN_COMPUTE)); then
    why="driver $DRIVER < $CURRENT_MIN_DRIVER"
    ((drv_major >= CURRENT_MIN_DRIVER)) && why="compute capability $COMPUTE < 7.5 (CUDA 13 dropped it)"
    BUILD="CUDA 12.6 ($why)" INDEX="$LEGACY_CUDA_INDEX" SPEC="$LEGACY_TORCH_SPEC"
  else
    BUILD="CUDA 13.0 (driver $DRIVER, compute capability $COMPUTE)" INDEX="$CURRENT_CUDA_INDEX" SPEC="$PINNED_SPEC"
  fi
  EXPECT_CUDA=1
elif [[ $SMI == absent && $DEVICE == no ]]; then
  warn "no NVIDIA GPU is attached to this machine: installing the CPU build (training will be slow)."
  say "          If you meant to get a GPU: stop the VM, add a GPU (Google Cloud: 'Edit' > 'GPUs')," \
    "or create the VM with a GPU machine type; see the README section 'Running on a cloud GPU VM'."
  BUILD="CPU (no GPU attached)" INDEX="$CPU_INDEX" SPEC="$PINNED_SPEC"
else
  gpu_failure
fi
if [[ -n $TORCH_INDEX_OVERRIDE ]]; then
  BUILD="$BUILD; index overridden by --torch-index"
  INDEX="$TORCH_INDEX_OVERRIDE"
  SPEC="$PINNED_SPEC"
  [[ $INDEX == "$LEGACY_CUDA_INDEX" ]] && SPEC="$LEGACY_TORCH_SPEC"
fi

heading "PyTorch build"
say "Build:    $BUILD"
say "Index:    $INDEX"
say "Torch:    $SPEC"

# ---- install --------------------------------------------------------------------------------
heading "Install"
[[ -r $REQ_FILE ]] ||
  die "$EXIT_ENV" "requirements.txt was not found next to setup_gpu.sh (looked in $SCRIPT_DIR)." \
    "Run the script from a full checkout of the course repository: bash path/to/repo/setup_gpu.sh"
VPY="$VENV/bin/python"
if [[ -x $VPY && -f $VENV/pyvenv.cfg ]]; then
  if [[ $DRY_RUN == 1 ]] || "$VPY" -c 'import pip' >/dev/null 2>&1; then
    say "Reusing $VENV"
  else  # left half-built by an interrupt or a full disk: let venv finish it (ensurepip)
    say "$VENV has no pip (a run was interrupted or the disk filled up): repairing it."
    run "$PYTHON" -m venv "$VENV"
    "$VPY" -c 'import pip' >/dev/null 2>&1 ||
      die "$EXIT_ENV" "$VENV is half-built and could not be repaired (still no pip)." \
        "Free some disk space (df -h), remove it with:  rm -rf '$VENV'  and run this again."
  fi
elif [[ -e $VENV || -L $VENV ]]; then
  die "$EXIT_ENV" "$VENV exists but is not a working virtual environment (no pyvenv.cfg or bin/python)." \
    "Remove it with:  rm -rf '$VENV'  (or choose another with --venv DIR), then run this again."
else
  run "$PYTHON" -m venv "$VENV"
fi
run "$VPY" -m pip install --upgrade pip

installed_torch() {  # the installed torch version (e.g. 2.13.0+cu130), empty if none
  [[ -x $VPY ]] || return 0
  "$VPY" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true
}
want_tag="${INDEX%/}"
want_tag="${want_tag##*/}"  # cpu, cu126, cu130
have="$(installed_torch)"
if [[ -n $have && $have != *"+$want_tag" ]]; then
  say "Installed torch $have is not the $want_tag build: replacing it."
  run "$VPY" -m pip uninstall -y torch
fi
# torch first, from the chosen index ...
run "$VPY" -m pip install --index-url "$INDEX" "$SPEC"

# ... then requirements.txt without its torch line, under a constraint that keeps that torch.
TMP_DIR="$(mktemp -d)"
have="$(installed_torch)"
[[ $DRY_RUN == 1 ]] && have="${have:-<installed torch version>}"
[[ -n $have ]] || die "$EXIT_ENV" "torch is not installed in $VENV after 'pip install $SPEC'." \
  "Read pip's output above (network? disk space?), fix it and run this again."
printf 'torch==%s\n' "$have" >"$TMP_DIR/constraints.txt"
grep -v -E '^[[:space:]]*torch[[:space:]]*([=<>!~;[#]|$)' "$REQ_FILE" >"$TMP_DIR/requirements-without-torch.txt" || true
say "Constraint: torch==$have (requirements.txt pins $PINNED_SPEC for CPU machines; the GPU build replaces it)"
run "$VPY" -m pip install -r "$TMP_DIR/requirements-without-torch.txt" -c "$TMP_DIR/constraints.txt"
run "$VPY" -m pip install --no-deps -e "$SCRIPT_DIR"
run touch "$VENV/.installed"  # tells the Makefile this venv is ready (so 'make test' keeps this torch)

# ---- verify ---------------------------------------------------------------------------------
heading "Verify"
VERIFY_PY='
import os, sys
import torch
print("torch:", torch.__version__)
ok = torch.cuda.is_available()
print("torch.cuda.is_available():", ok)
if os.environ["EXPECT_CUDA"] == "1":
    if not ok:
        sys.exit(1)
    print("device:", torch.cuda.get_device_name(0))
    a = torch.randn(512, 512, device="cuda")
    b = torch.randn(512, 512, device="cuda")
    c = (a @ b).cpu()                                   # (512, 512), computed on the GPU
    ref = a.cpu() @ b.cpu()
    err = ((c - ref).norm() / ref.norm()).item()
    print(f"GPU matmul 512x512: relative error vs CPU {err:.1e}")
    sys.exit(0 if err < 1e-3 else 2)
a = torch.randn(256, 256)
print("CPU matmul 256x256:", tuple((a @ a).shape))
'
if [[ $DRY_RUN == 1 ]]; then
  say "[dry-run] EXPECT_CUDA=$EXPECT_CUDA $(quote "$VPY") -c '<print torch version, cuda.is_available(), device name; GPU matmul>'"
elif ! EXPECT_CUDA="$EXPECT_CUDA" "$VPY" -c "$VERIFY_PY"; then
  die "$EXIT_VERIFY" "PyTorch was installed but CUDA does not work." \
    "GPU: ${GPU_NAME:-?}   driver: ${DRIVER:-?}   compute capability: ${COMPUTE:-?}" \
    "index: $INDEX   torch: $(installed_torch)" \
    "Check that the driver works (nvidia-smi), reboot if it was just updated, and run this again;" \
    "or pick another build with --torch-index $LEGACY_CUDA_INDEX."
fi

# ---- Jupyter --------------------------------------------------------------------------------
heading "Jupyter"
if [[ -n $METADATA_URL ]] && command -v curl >/dev/null 2>&1; then  # Google Cloud fills these in
  meta() { curl -fsS --max-time 2 -H 'Metadata-Flavor: Google' "$METADATA_URL/$1" 2>/dev/null; }
  if name="$(meta instance/name)" && [[ -n $name ]]; then
    VM_NAME="$name"
    zone="$(meta instance/zone || true)"
    [[ -n $zone ]] && VM_ZONE="${zone##*/}"
    ip="$(meta instance/network-interfaces/0/access-configs/0/external-ip || true)"
    [[ -n $ip ]] && VM_IP="$ip"
  fi
fi
SSH_USER="$(id -un 2>/dev/null || echo USER)"
say "Jupyter listens on $BIND_IP:$PORT only, with token authentication. From YOUR computer, open a tunnel:"
say "  ssh -N -L $PORT:localhost:$PORT $SSH_USER@$VM_IP"
say "  gcloud compute ssh $VM_NAME --zone $VM_ZONE -- -N -L $PORT:localhost:$PORT"
say "Keep it open, then browse to the http://localhost:$PORT/lab?token=... URL that Jupyter prints."

jupyter_cmd=("$VENV/bin/jupyter" lab --no-browser "--ServerApp.ip=$BIND_IP" "--ServerApp.port=$PORT"
  --ServerApp.port_retries=0 "--ServerApp.root_dir=$SCRIPT_DIR")
[[ $(id -u) == 0 ]] && jupyter_cmd+=(--allow-root)
if [[ $LAUNCH == 1 ]]; then
  # The token reaches Jupyter through its environment (JUPYTER_TOKEN), never the command line:
  # any local user can read a process's arguments (ps, /proc/PID/cmdline); its environment is
  # readable only by the same user and root.
  token="<generated token>"
  if [[ $DRY_RUN != 1 ]]; then
    token="$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))')"
    [[ ${#token} -ge 32 ]] || die "$EXIT_ENV" "Could not generate a Jupyter token with $PYTHON." \
      "Check that '$PYTHON -c \"import secrets\"' works, then run this again."
  fi
  export JUPYTER_TOKEN="$token"
  [[ $DRY_RUN == 1 ]] && say "[dry-run] export JUPYTER_TOKEN=<generated token>   (environment, not the command line)"
  say "Starting Jupyter (Ctrl-C to stop). Open: http://localhost:$PORT/lab?token=$token"
  run "${jupyter_cmd[@]}"
else
  say "Start it with:  bash $SCRIPT_DIR/setup_gpu.sh --launch-jupyter"
  say "(or directly:   $(quote "${jupyter_cmd[@]}") ; Jupyter makes a token itself)"
fi
