"""Let the memory of freed arrays serve the next arrays (given code).

The fast layers allocate a few large temporaries on every call (the padded input,
the im2col columns, the matrix products: megabytes each) and free them again.
With glibc's default settings, the memory freed at the top of the heap goes back
to the kernel as soon as more than a few MiB are free, and an array above the
mmap threshold gets fresh pages from the kernel on every call. Either way the
next call pays a page fault, and the kernel's zeroing, for every 4 KiB page it
touches: on the small conv shape of the benchmark that doubles the time of the
arithmetic. keep_freed_memory() raises both thresholds, so freed memory stays in
the process (up to TRIM_THRESHOLD) and arrays up to MMAP_THRESHOLD come from it.

    keep_freed_memory()   # once, when cs_layers.fast_layers is imported

Linux with glibc only; elsewhere (macOS, Windows, musl) it does nothing, and the
layers are as correct, only slower on small shapes. CS_LAYERS_KEEP_FREED_MEMORY=0
in the environment turns it off. Nothing here changes a result.
"""
import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # arrays up to 32 MiB from the heap: glibc's own limit for its dynamic threshold
TRIM_THRESHOLD = 128 << 20  # free memory kept at the top of the heap before any goes back to the kernel
OPT_OUT = "CS_LAYERS_KEEP_FREED_MEMORY"

_applied = None  # None: not tried yet; then True or False


def _glibc():
    """The C library of this process if it is glibc, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # only glibc has it (musl has a mallopt that does nothing)
        libc.mallopt
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.mallopt.restype = ctypes.c_int
    return libc


def keep_freed_memory():
    """Raise glibc's trim and mmap thresholds, once per process.

    Returns True if the settings are in effect, False where they do not apply
    (not glibc, or CS_LAYERS_KEEP_FREED_MEMORY=0 when first called).
    """
    global _applied
    if _applied is None:
        libc = None if os.environ.get(OPT_OUT, "").strip() == "0" else _glibc()
        _applied = bool(libc is not None
                        and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                        and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
    return _applied
