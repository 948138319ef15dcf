"""Execute both notebooks headless, render them as HTML, and time them against the target.

    python -m bench.notebooks [--fast] [--data auto|default] [--out out/notebooks]

Each notebook runs top to bottom with nbclient in a temporary copy of
assignments/convnets/ (so the repository stays clean), with a progress bar over its
cells. The executed notebooks, with their figures, are written to
<out>/<name>.html (nbconvert's HTMLExporter). A table then gives each notebook's
execution time against its target: the whole ConvolutionalNetworks notebook must run
in at most 3 minutes on a 2-core machine with the generated default dataset and
default settings (no --fast), and so must the PyTorch notebook on the CPU. The slowest
cells are listed too.

--fast sets CS_LAYERS_FAST=1 (shorter training, smaller speed tests; every check
still runs). --data default hides any downloaded CIFAR-10 from the notebooks, so the
run uses the generated patterns like CI does. Exit status 1 when a cell fails (its HTML
is still written, with the error in it).
"""
import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from tqdm import tqdm
from traitlets.config import Config

from cs_layers import course

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / course.NOTEBOOK_DIR
# Notebook name -> execution-time target in seconds: 3 minutes each on 2 cores.
TARGETS = {f"{name}.ipynb": 180.0 for name in course.NOTEBOOKS}


def kernel_config(sockets):
    """nbclient's kernel talks over unix sockets in the folder `sockets` where there are unix
    sockets: no loopback TCP port, and no warning from ipykernel that TCP is unencrypted."""
    config = Config()
    if os.name == "posix":
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(Path(sockets) / "kernel")
    return config


def run_notebook(name, workdir, timeout):
    """Execute one notebook cell by cell; return (executed nb, total seconds, per-cell seconds, error)."""
    shutil.copy(SOURCE / name, workdir / name)
    nb = nbformat.read(workdir / name, as_version=4)
    with tempfile.TemporaryDirectory(prefix="nbk-") as sockets:  # short: a socket path has <= 104 bytes
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", config=kernel_config(sockets),
                                resources={"metadata": {"path": str(workdir)}})
        return _execute(client, nb, name)


def _execute(client, nb, name):
    """Run nb's cells with client up to the first error; (nb, total s, per-cell s, error)."""
    cell_times, error = [], None
    start = time.perf_counter()
    client.reset_execution_trackers()
    with client.setup_kernel():
        for index, cell in enumerate(tqdm(nb.cells, desc=name, unit="cell")):
            t0 = time.perf_counter()
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as err:
                last = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip().splitlines()[-1]
                error = f"cell {index}: {last}"
                cell_times.append((time.perf_counter() - t0, index))
                break
            cell_times.append((time.perf_counter() - t0, index))
    return nb, time.perf_counter() - start, cell_times, error


def first_line(cell):
    lines = [ln for ln in cell.source.splitlines() if ln.strip()]
    return (lines[0][:60] if lines else "").replace("|", "/")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="set CS_LAYERS_FAST=1 (CI-length run)")
    parser.add_argument("--data", choices=["auto", "default"], default="auto",
                        help="default: hide a downloaded CIFAR-10 so the generated patterns are used")
    parser.add_argument("--out", default="out/notebooks", help="folder for the HTML renderings")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    parser.add_argument("notebooks", nargs="*", default=list(TARGETS), help="notebook file names")
    args = parser.parse_args(argv)

    unknown = [n for n in args.notebooks if n not in TARGETS]
    if unknown:
        parser.error(f"unknown notebook(s) {unknown}; choose from {list(TARGETS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["CS_LAYERS_FAST"] = "1" if args.fast else ""
    # The kernel must import this checkout's cs_layers even when it is not installed.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH")] if p)
    exporter = HTMLExporter()
    rows, failed = [], False
    with tempfile.TemporaryDirectory(prefix="cs_layers_notebooks_") as tmp:
        if args.data == "default":
            os.environ["CS_LAYERS_DATA"] = str(Path(tmp) / "no-cifar")
        workdir = Path(tmp) / course.NOTEBOOK_DIR
        workdir.mkdir(parents=True)
        for name in args.notebooks:
            nb, seconds, cell_times, error = run_notebook(name, workdir, args.timeout)
            html, _ = exporter.from_notebook_node(nb)
            target = out / name.replace(".ipynb", ".html")
            target.write_text(html, encoding="utf-8")
            rows.append((name, seconds, TARGETS[name], error, target, nb, cell_times))
            failed = failed or error is not None

    mode = "fast (CS_LAYERS_FAST=1)" if args.fast else "default"
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"\nnotebook execution times, {mode} settings, data={args.data}, {os.cpu_count()} CPUs, "
          f"load average {load} (other work on the machine inflates these times)")
    print(f"{'notebook':28s} {'seconds':>8s} {'target':>8s}  result")
    for name, seconds, limit, error, target, _, _ in rows:
        verdict = "FAILED: " + error if error else ("ok" if seconds <= limit else "OVER TARGET")
        print(f"{name:28s} {seconds:8.1f} {limit:8.0f}  {verdict}")
    for name, _, _, _, target, nb, cell_times in rows:
        slowest = sorted(cell_times, reverse=True)[:3]
        print(f"{name}: slowest cells " + "; ".join(
            f"#{i} {t:.1f}s '{first_line(nb.cells[i])}'" for t, i in slowest))
        print(f"  HTML: {target}")
    if args.fast:
        print("(the 3-minute target applies to the default settings; run without --fast to measure it)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
