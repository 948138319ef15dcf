"""Throughput of the autograder, and what hostile submissions cost the class.

    python -m bench.grading [--n 100] [--hostile 0.1] [--jobs 2] [--timeout 60] [--sandbox auto]
    python -m bench.grading --notebooks [--n 10] [--hostile 0] [--jobs 2]

Generates N submissions made by grading.examples patches (no model file, no notebooks):
the honest ones alternate between the reference and a partly wrong copy; a fraction
--hostile are attacks on the cost per student (hang in every task, keep-alive, fork, memory
and disk filling across processes, a daemon). It grades, side by side in one run:

1. the honest submissions alone  -> honest time H
2. the whole class               -> class time T, the slowest student, peak memory (all
                                    processes of one run, cgroup) and peak disk (one
                                    student's tmpfs) of a single student

with `python -m grading autograde --jobs J --timeout-per-submission D` end to end, and checks:
every honest student's grade is the same in both runs, and
T <= H + D x hostile / J  (the deadline bounds what a hostile student costs).
It also prints the CPU seconds of the honest run per submission (grader, sandboxes, nbgrader,
kernels and workers together; counted in a cgroup v1 cpuacct group, where the machine has one).

--notebooks grades complete submissions: each honest one also carries a trained
convnet_model.npz and challenge_model.pt (trained once here) and both notebooks, executed by
nbgrader in the sandbox. Under the grader (CS_LAYERS_GRADING=1, cs_layers.grading_run) the
notebooks load the submitted checkpoint and challenge model instead of retraining them, and
the demonstration trainings run a few batches. Target: 100 complete submissions in <= 600 s (10
minutes) with --jobs 2, extrapolated linearly from H when N < 100 (and said so).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grading.examples import (
    CHALLENGE_FILE,
    MODEL_FILE,
    append_patch,
    copy_notebooks,
    copy_reference,
    train_challenge,
    train_model,
    wrap,
)

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS_TARGET_S = 600.0  # 100 complete submissions (module, model, both notebooks), --jobs 2

_EVERYWHERE = ("conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive",
               "max_pool_backward_naive", "affine_forward", "batchnorm_forward",
               "spatial_groupnorm_forward")
HOSTILE = {  # name -> (module, code): each costs as much as the grader lets it
    "hang_everywhere": ("layers.py", "\n".join(wrap(f, """
        import time
        time.sleep(4.5)  # just under the per-case watchdog, in every case
        return _orig(*args, **kwargs)
    """) for f in _EVERYWHERE)),
    "infinite_loop": ("layers.py", wrap("max_pool_backward_naive", """
        while True:
            pass
    """)),
    "keep_alive": ("layers.py", wrap("conv_backward_naive", """
        import os, time
        if os.fork() == 0:
            while True:
                for n in os.listdir("outputs/status"):
                    try:
                        os.utime("outputs/status/" + n)
                    except OSError:
                        pass
                time.sleep(0.2)
        while True:
            time.sleep(1)
    """)),
    "memory_procs": ("layers.py", wrap("spatial_groupnorm_backward", """
        import os, time
        kids = []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                block = bytearray(700 << 20)
                block[::4096] = b"\\1" * len(range(0, len(block), 4096))
                time.sleep(2)
                os._exit(0)
            kids.append(pid)
        for p in kids:
            os.waitpid(p, 0)
        return _orig(*args, **kwargs)
    """)),
    "disk_procs": ("layers.py", wrap("conv_backward_naive", """
        import os
        kids = []
        for k in range(4):
            pid = os.fork()
            if pid == 0:
                try:
                    for i in range(6):
                        with open("outputs/fill%d_%d.bin" % (k, i), "wb") as f:
                            for _ in range(60):
                                f.write(b"\\0" * (1 << 20))
                except OSError:
                    pass
                os._exit(0)
            kids.append(pid)
        for p in kids:
            os.waitpid(p, 0)
        return _orig(*args, **kwargs)
    """)),
    "daemon": ("layers.py", wrap("conv_backward_naive", """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                while True:
                    time.sleep(1)
            os._exit(0)
        return _orig(*args, **kwargs)
    """)),
}


def make_class(root: Path, n: int, hostile: float, model: Path | None = None,
               challenge: Path | None = None) -> tuple[list[str], list[str]]:
    """(honest ids, hostile ids); hostile ones spread evenly through the class.

    With a model, every honest submission also carries it, the challenge weights and both notebooks.
    """
    n_bad = round(n * hostile)
    bad_at = {round(i * n / n_bad) for i in range(n_bad)} if n_bad else set()
    honest, bad = [], []
    kinds = list(HOSTILE)
    for i in range(n):
        if i in bad_at:
            kind = kinds[len(bad) % len(kinds)]
            sid = f"h{i:03d}_{kind}"
            module, code = HOSTILE[kind]
            append_patch(copy_reference(root / sid), module, code)
            bad.append(sid)
            continue
        sid = f"s{i:03d}"
        sub = copy_reference(root / sid)
        if model is not None:
            (sub / MODEL_FILE).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(model, sub / MODEL_FILE)
            if challenge is not None:
                shutil.copyfile(challenge, sub / CHALLENGE_FILE)
            copy_notebooks(sub)
        if i % 2:
            append_patch(sub, "layers.py", wrap("conv_backward_naive", """
                dx, dw, db = _orig(*args, **kwargs)
                return dx, dw, -db
            """))
        honest.append(sid)
    return honest, bad


CPUACCT = Path("/sys/fs/cgroup/cpuacct")  # cgroup v1: counts every descendant, sandboxed ones too


@contextlib.contextmanager
def cpu_group():
    """A cpuacct cgroup for one grading run: (enter, seconds) callables, or None where unavailable.

    The sandbox moves its processes into memory and pids groups only, so on cgroup v1 the
    CPU of nbgrader, the kernels and the workers is counted here. (On cgroup v2 it is not
    measured: the sandbox's groups leave this one.)
    """
    d = CPUACCT / f"cs-layers-bench-{os.getpid()}-{time.monotonic_ns()}"
    try:
        d.mkdir()
    except OSError:
        yield None
        return
    try:
        yield (lambda: (d / "cgroup.procs").write_text(str(os.getpid())),
               lambda: int((d / "cpuacct.usage").read_text()) / 1e9)
    finally:
        for _ in range(100):  # empty once the run's last process is reaped
            try:
                d.rmdir()
                break
            except OSError:
                time.sleep(0.05)


def grade(subs: Path, out: Path, args, seed: Path) -> tuple[float, dict]:
    start = time.monotonic()
    with cpu_group() as group:
        proc = subprocess.run([sys.executable, "-m", "grading", "autograde", str(subs), "--out",
                               str(out), "--jobs", str(args.jobs), "--quiet", "--seed-file", str(seed),
                               "--timeout-per-submission", str(args.timeout),
                               "--sandbox", args.sandbox], cwd=REPO, capture_output=True, text=True,
                              preexec_fn=group[0] if group else None)
        cpu_s = group[1]() if group else None
    took = time.monotonic() - start
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
        raise SystemExit(1)
    records = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    with open(out / "grades.csv", newline="") as f:
        grades = {(r["student_id"], r["task"]): (r["score"], r["status"]) for r in csv.DictReader(f)}
    return took, {"records": records, "grades": grades, "stdout": proc.stdout, "cpu_s": cpu_s}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grading", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100, help="number of submissions")
    parser.add_argument("--hostile", type=float, default=0.1, help="fraction of hostile ones")
    parser.add_argument("--jobs", type=int, default=2, help="students graded in parallel")
    parser.add_argument("--timeout", type=float, default=None,
                        help="--timeout-per-submission D (default 60 s, with --notebooks 1200 s)")
    parser.add_argument("--sandbox", default="auto", help="--sandbox of the grader")
    parser.add_argument("--notebooks", action="store_true",
                        help="complete submissions: module, trained model and both notebooks (nbgrader)")
    args = parser.parse_args(argv)
    if args.timeout is None:
        args.timeout = 1200.0 if args.notebooks else 60.0
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        subs, honest_only = tmp / "class", tmp / "honest"
        model = challenge = None
        if args.notebooks:
            model, challenge = tmp / "model.npz", tmp / "challenge_model.pt"
            print(f"trained the submissions' model (validation accuracy {train_model(model):.3f})")
            print(f"trained the submissions' challenge model (test accuracy {train_challenge(challenge):.3f})")
        honest, bad = make_class(subs, args.n, args.hostile, model, challenge)
        honest_only.mkdir()
        for sid in honest:
            shutil.copytree(subs / sid, honest_only / sid)  # the same files, graded alone
        seed = tmp / "seed"
        seed.write_bytes(b"bench-grading-seed-0123456789abcdef")
        h_time, h = grade(honest_only, tmp / "out-honest", args, seed)
        # without hostile submissions the class is the honest run: do not grade it twice
        t_time, t = grade(subs, tmp / "out-class", args, seed) if bad else (h_time, h)
    layers = [line for line in t["stdout"].splitlines() if line.startswith(("  [", "WARNING"))]
    changed = sorted({sid for (sid, task), v in h["grades"].items() if t["grades"].get((sid, task)) != v})
    recs = t["records"]
    slow_id = max(recs, key=lambda s: recs[s]["duration_s"])
    mem_id = max(recs, key=lambda s: recs[s].get("usage", {}).get("peak_memory_mb", 0))
    disk_id = max(recs, key=lambda s: recs[s].get("usage", {}).get("peak_disk_mb", 0))
    bound = h_time + args.timeout * len(bad) / args.jobs
    print("\n".join(layers))
    print(f"\n{'run':<22} {'students':>8} {'seconds':>8} {'ratio':>6}")
    print(f"{'honest only (H)':<22} {len(honest):>8} {h_time:>8.1f} {1.0:>6.2f}")
    print(f"{'class, hostile mixed':<22} {len(recs):>8} {t_time:>8.1f} {t_time / h_time:>6.2f}")
    print(f"{'bound H + D*hostile/J':<22} {len(bad):>8} {bound:>8.1f} {bound / h_time:>6.2f}"
          f"   {'met' if t_time <= bound else 'MISSED'}")
    print(f"\nslowest student: {slow_id} {recs[slow_id]['duration_s']:.1f} s "
          f"(deadline D = {args.timeout:g} s, jobs J = {args.jobs})")
    for what, sid in (("peak_memory_mb", mem_id), ("peak_disk_mb", disk_id)):
        value = recs[sid].get("usage", {}).get(what)
        print(f"{what}: {f'{value:g} MiB ({sid})' if value is not None else 'not measured here'}")
    print(f"honest students whose grade changed beside hostile ones: {changed or 'none'}")
    if h["cpu_s"] is not None:
        print(f"CPU of the honest run (grader, sandboxes, nbgrader, kernels): {h['cpu_s']:.0f} s, "
              f"{h['cpu_s'] / max(len(honest), 1):.1f} s per submission; wall "
              f"{h_time / max(len(honest), 1):.1f} s per submission with --jobs {args.jobs}")
    else:
        print("CPU of the honest run: not measured here (needs the cgroup v1 cpuacct hierarchy)")
    if args.notebooks:
        per_100 = h_time * 100 / max(len(honest), 1)
        note = "" if len(honest) >= 100 else f" (extrapolated from {len(honest)})"
        print(f"complete submissions (module, model, both notebooks): {per_100:.0f} s per 100 with "
              f"--jobs {args.jobs}; target 100 in <= {NOTEBOOKS_TARGET_S:g} s: "
              f"{'PASS' if per_100 <= NOTEBOOKS_TARGET_S else 'MISS'}{note}")
    return 0 if not changed and len(recs) == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
