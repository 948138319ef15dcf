"""Run a layer's work over the batch in cache-sized chunks, on a few threads (given code).

The fast pooling layers are bound by memory traffic, not arithmetic: each window
offset is a strided slice that touches every cache line of the input again. Cut
into chunks of a few images that fit the CPU cache, the second and later touches
are cheap; and numpy releases the GIL inside its loops, so two chunks can run on
two cores at once (as torch's own kernels do). A small batch (under PARALLEL_BYTES
of input in all) stays on the calling thread: there, starting and joining a thread
costs more than the second core saves. Nothing here changes a result:
each chunk is computed exactly as the whole batch would be, into its own slice
of the output.

    for_batch_chunks(fill, N, x[0].nbytes)   # calls fill(slice(a, b)) for chunks covering 0..N

Threads: THREADS at import is the first of OMP_NUM_THREADS, OPENBLAS_NUM_THREADS
(the grader's sandbox sets both to 1) or the CPUs this process may use, at most 4;
set_threads(n) changes it (the benchmarks match it to torch's thread count). The
calling thread works through the chunks too, so where no other thread can be started
(a process limit), it simply does them all.
"""
import os
import threading

CHUNK_BYTES = 1 << 20  # input bytes per chunk: well inside a 1 MiB L2 cache with the outputs
PARALLEL_BYTES = 4 << 20  # less input than this in all: every chunk on the calling thread
MAX_THREADS = 4


def _default_threads():
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            return min(int(value), MAX_THREADS)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no sched_getaffinity
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_THREADS))


THREADS = _default_threads()


def set_threads(n):
    """Use n >= 1 threads (the caller's included) from now on; returns the previous count."""
    global THREADS
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_threads needs a whole number of threads >= 1, got {n!r}")
    previous, THREADS = THREADS, n
    return previous


def chunk_slices(n, item_bytes, threads=None):
    """Slices covering range(n) in order: at most CHUNK_BYTES of input each (at least one
    item), and at least `threads` slices (when n allows) so that every thread gets work."""
    threads = THREADS if threads is None else threads
    per_chunk = max(1, int(CHUNK_BYTES // max(1, item_bytes)))
    per_chunk = min(per_chunk, max(1, -(-n // threads)))  # ceil(n / threads)
    return [slice(a, min(a + per_chunk, n)) for a in range(0, n, per_chunk)]


def for_batch_chunks(fill, n, item_bytes):
    """Call fill(s) once for each slice s of chunk_slices(n, item_bytes, threads), on `threads`
    threads: THREADS, or only the calling thread when n * item_bytes < PARALLEL_BYTES.

    fill must write only into its own slice of the outputs. If a chunk raises, no new
    chunk starts, and the exception of the first failed chunk is raised here once every
    thread has stopped (so nothing writes into the outputs after this returns).
    """
    threads = THREADS if n * item_bytes >= PARALLEL_BYTES else 1
    slices = chunk_slices(n, item_bytes, threads)
    todo = iter(slices)
    lock = threading.Lock()
    errors = []  # (chunk start, exception)

    def work():
        while True:
            with lock:
                s = None if errors else next(todo, None)
            if s is None:
                return
            try:
                fill(s)
            except BaseException as error:  # handed to the caller below
                with lock:
                    errors.append((s.start, error))

    helpers = []
    for _ in range(min(threads, len(slices)) - 1):
        thread = threading.Thread(target=work, name="cs_layers-chunk", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # "can't start new thread": a process limit; this thread does the rest
            break
        helpers.append(thread)
    work()
    for thread in helpers:
        thread.join()
    if errors:
        raise min(errors, key=lambda e: e[0])[1]
