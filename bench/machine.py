"""What a benchmark ran on: BLAS kernel, threads, load average (printed above every table).

Timings mean little without these: a shared machine (load average above its CPU count)
inflates every time, and OpenBLAS picks a different kernel per CPU (OPENBLAS_CORETYPE
overrides it; `make bench` unsets it for the benchmark commands alone).
"""
import os
import platform

import numpy as np
from threadpoolctl import threadpool_info

from cs_layers import allocator, batch_chunks


def blas_threads():
    """Threads numpy's BLAS uses now (threadpoolctl), or the CPU count if it reports none."""
    blas = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return blas[0]["num_threads"] if blas else os.cpu_count()


def describe(threads):
    """Lines naming the BLAS kernel, the threads, the CPUs and the load average."""
    import torch

    load = os.getloadavg()
    busy = (" (BUSY: other work shares the CPUs; expect noisy, inflated times)"
            if load[0] > (os.cpu_count() or 1) else "")
    lines = [f"threads: {threads} for numpy's BLAS (threadpoolctl) and torch "
             f"(torch.get_num_threads() = {torch.get_num_threads()}), "
             f"{batch_chunks.THREADS} for the fast pooling chunks (1 below "
             f"{batch_chunks.PARALLEL_BYTES >> 20} MiB of input); {os.cpu_count()} CPUs; "
             f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}{busy}",
             f"numpy {np.__version__}, torch {torch.__version__}, python {platform.python_version()}, "
             f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, freed memory kept "
             f"for the next arrays (cs_layers.allocator): {'yes' if allocator.keep_freed_memory() else 'no'}"]
    for lib in threadpool_info():
        lines.append("  {user_api}: internal_api={internal_api} version={version} "
                     "kernel={arch} num_threads={num_threads} ({prefix})".format(
                         arch=lib.get("architecture", lib.get("coretype", "?")), **{
                             k: lib.get(k, "?") for k in ("user_api", "internal_api", "version",
                                                          "num_threads", "prefix")}))
    return lines


def verdict(ok):
    return "PASS" if ok else "MISS"
