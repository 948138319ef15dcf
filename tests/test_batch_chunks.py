"""batch_chunks (given code): the fast pooling layers' chunks of images, on a few threads."""
import os
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cs_layers import batch_chunks
from cs_layers.fast_layers import max_pool_backward_fast, max_pool_forward_fast
from cs_layers.layers import max_pool_backward_naive, max_pool_forward_naive


@pytest.fixture
def threads():
    """Set the chunk threads for one test; restored afterwards."""
    previous = batch_chunks.THREADS
    yield batch_chunks.set_threads
    batch_chunks.set_threads(previous)


@given(n=st.integers(1, 300), item_bytes=st.integers(1, 1 << 22), threads=st.integers(1, 8))
def test_chunk_slices_cover_the_batch_in_order_once(n, item_bytes, threads):
    slices = batch_chunks.chunk_slices(n, item_bytes, threads)
    assert [s.start for s in slices] == [0] + [s.stop for s in slices[:-1]]
    assert slices[-1].stop == n and all(s.stop > s.start for s in slices)
    if n >= threads:
        assert len(slices) >= threads  # every thread gets work
    if item_bytes * 2 <= batch_chunks.CHUNK_BYTES:
        assert all((s.stop - s.start) * item_bytes <= batch_chunks.CHUNK_BYTES for s in slices)
    sizes = [s.stop - s.start for s in slices]
    assert max(sizes) - min(sizes) <= 1, "even chunks: the threads finish together"
    assert len(slices) % threads == 0 or len(slices) == n


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_every_chunk_runs_exactly_once(threads, n_threads):
    threads(n_threads)
    seen, lock = [], threading.Lock()

    def fill(s):
        with lock:
            seen.append((s.start, s.stop))

    batch_chunks.for_batch_chunks(fill, 1000, batch_chunks.CHUNK_BYTES // 7)
    assert sorted(seen) == [(s.start, s.stop) for s in batch_chunks.chunk_slices(1000, batch_chunks.CHUNK_BYTES // 7)]


def test_the_first_failing_chunk_is_raised_after_all_threads_stopped(threads):
    threads(3)
    running, finished = [], []

    def fill(s):
        running.append(s.start)
        time.sleep(0.002)  # the helpers take chunks too
        finished.append(s.start)
        if s.start > 0:
            raise KeyError(s.start)

    with pytest.raises(KeyError) as error:
        batch_chunks.for_batch_chunks(fill, 40, batch_chunks.CHUNK_BYTES)
    assert error.value.args[0] == min(s for s in running if s > 0)
    seen = list(running)
    time.sleep(0.05)
    assert running == seen and sorted(finished) == sorted(running), "a chunk ran after the call returned"
    assert len(running) < 40, "no new chunk starts after one failed"


def _fresh_helpers(monkeypatch):
    """Forget the helper threads earlier tests started (they stay idle), for this test alone."""
    monkeypatch.setattr(batch_chunks, "_helpers", [])
    monkeypatch.setattr(batch_chunks, "_tasks", batch_chunks.queue.SimpleQueue())


def test_a_small_batch_stays_on_the_calling_thread(threads, monkeypatch):
    threads(4)
    _fresh_helpers(monkeypatch)
    started = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: (started.append(self.name), real_start(self)))
    ran_on = set()

    def fill(s):
        ran_on.add(threading.get_ident())
        time.sleep(0.002)  # long enough for a helper to take the next chunk

    monkeypatch.setattr(batch_chunks, "CHUNK_BYTES", batch_chunks.PARALLEL_BYTES // 4)
    item_bytes = batch_chunks.CHUNK_BYTES // 8  # 8 images a chunk
    small = batch_chunks.PARALLEL_BYTES // item_bytes - 1  # just under the threshold: several chunks
    batch_chunks.for_batch_chunks(fill, small, item_bytes)
    assert ran_on == {threading.get_ident()} and not started
    assert len(batch_chunks.chunk_slices(small, item_bytes, 1)) > 1  # chunked all the same
    batch_chunks.for_batch_chunks(fill, small + 1, item_bytes)  # at the threshold: threads
    assert started and set(started) == {"cs_layers-chunk"} and len(ran_on) > 1


def test_helper_threads_are_started_once_and_reused(threads, monkeypatch):
    threads(3)
    _fresh_helpers(monkeypatch)
    ran_on = set()

    def fill(s):
        ran_on.add(threading.get_ident())
        time.sleep(0.002)

    for _ in range(5):
        batch_chunks.for_batch_chunks(fill, 30, batch_chunks.CHUNK_BYTES)
    helpers = [t for t in threading.enumerate() if t in batch_chunks._helpers]
    assert len(batch_chunks._helpers) == 2 and len(helpers) == 2, "two helpers, started once for all five calls"
    assert ran_on <= {threading.get_ident()} | {t.ident for t in helpers} and len(ran_on) > 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_helpers(threads):
    threads(2)
    batch_chunks.for_batch_chunks(lambda s: None, 8, batch_chunks.CHUNK_BYTES)  # the parent's helpers run
    assert batch_chunks._helpers
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its helpers would never run if it reused the parent's list
        try:
            out = np.zeros(64)
            batch_chunks.for_batch_chunks(lambda s: out.__setitem__(s, 1.0), 64, batch_chunks.CHUNK_BYTES)
            os.write(write, b"ok" if out.all() and batch_chunks._helpers else b"bad")
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as r:
        answer = r.read()
    os.waitpid(pid, 0)
    assert answer == b"ok"


def test_without_threads_the_caller_does_every_chunk(threads, monkeypatch):
    threads(4)
    _fresh_helpers(monkeypatch)

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    out = np.zeros(50)
    batch_chunks.for_batch_chunks(lambda s: out.__setitem__(s, np.arange(50)[s] + 1), 50, 1 << 19)
    assert np.array_equal(out, np.arange(50) + 1)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_threads_refuses_a_bad_count(bad):
    with pytest.raises(ValueError, match="set_threads"):
        batch_chunks.set_threads(bad)


def test_the_default_follows_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert batch_chunks.default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "64")
    assert batch_chunks.default_threads() == batch_chunks.MAX_THREADS


@settings(max_examples=25, deadline=None)
@given(n_threads=st.integers(1, 4), n=st.integers(1, 9), ph=st.integers(1, 3), pw=st.integers(1, 3),
       stride=st.integers(1, 3), seed=st.integers(0, 2**31 - 1))
def test_pooling_is_the_same_on_any_number_of_threads(n_threads, n, ph, pw, stride, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(n, 2, 5, 6)).astype(np.float64)  # many ties
    param = {"pool_height": ph, "pool_width": pw, "stride": stride}
    out_one, cache_one = max_pool_forward_fast(x, param)  # a small batch: one chunk, one thread
    dout = rng.standard_normal(out_one.shape)
    dx_one = max_pool_backward_fast(dout, cache_one)
    previous = batch_chunks.set_threads(n_threads)
    old_bytes, batch_chunks.CHUNK_BYTES = batch_chunks.CHUNK_BYTES, 64  # many small chunks
    old_parallel, batch_chunks.PARALLEL_BYTES = batch_chunks.PARALLEL_BYTES, 0  # threads even for these
    try:
        out, cache = max_pool_forward_fast(x, param)
        dx = max_pool_backward_fast(dout, cache)
    finally:
        batch_chunks.CHUNK_BYTES = old_bytes
        batch_chunks.PARALLEL_BYTES = old_parallel
        batch_chunks.set_threads(previous)
    assert np.array_equal(out, out_one) and np.array_equal(cache[2], cache_one[2])  # the argmax too
    assert np.array_equal(dx, dx_one)  # bit for bit: each chunk is computed as the whole batch would be
    out_naive, cache_naive = max_pool_forward_naive(x, param)
    assert np.array_equal(out, out_naive)
    # overlapping windows add their gradients in another order in the naive layer
    np.testing.assert_allclose(dx, max_pool_backward_naive(dout, cache_naive), rtol=1e-12, atol=1e-15)
