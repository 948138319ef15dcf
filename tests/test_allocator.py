"""allocator (given code): freed arrays' memory serves the next arrays, on glibc."""
import json
import os
import subprocess
import sys

import pytest

from cs_layers import allocator

# In a fresh process: import the fast layers, then allocate and free three 8 MiB arrays
# over and over; print whether the settings apply and the page faults of one round.
PROBE = """
import json, resource, numpy as np
import cs_layers.fast_layers
from cs_layers.allocator import keep_freed_memory

def round_():
    a, b, c = (np.ones(1 << 20) for _ in range(3))  # 3 x 8 MiB, every page touched
    del a, b, c

round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    round_()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10
print(json.dumps({"applied": keep_freed_memory(), "faults": faults}))
"""
PAGES_PER_ROUND = 3 * (8 << 20) // 4096


def probe(**env):
    result = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, **env},
                            capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout)


@pytest.fixture
def fresh(monkeypatch):
    """keep_freed_memory as if never called in this process (restored afterwards)."""
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.delenv(allocator.OPT_OUT, raising=False)


@pytest.mark.skipif(allocator._glibc() is None, reason="the settings apply to glibc only")
def test_importing_the_fast_layers_lets_freed_memory_serve_the_next_arrays():
    got = probe()
    assert got["applied"] is True
    assert got["faults"] < PAGES_PER_ROUND / 20, (
        f"{got['faults']} page faults per round of 3 x 8 MiB arrays ({PAGES_PER_ROUND} pages): "
        f"freed memory went back to the kernel")


def test_the_environment_turns_it_off():
    assert probe(**{allocator.OPT_OUT: "0"})["applied"] is False


def test_it_does_nothing_off_glibc(fresh, monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert allocator._glibc() is None
    assert allocator.keep_freed_memory() is False


def test_the_settings_are_made_once(fresh, monkeypatch):
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(allocator, "_glibc", FakeLibc)
    assert allocator.keep_freed_memory() is True
    assert allocator.keep_freed_memory() is True
    assert calls == [(allocator.M_MMAP_THRESHOLD, allocator.MMAP_THRESHOLD),
                     (allocator.M_TRIM_THRESHOLD, allocator.TRIM_THRESHOLD)]


def test_a_refused_setting_reports_false(fresh, monkeypatch):
    class RefusingLibc:
        def mallopt(self, param, value):
            return 0

    monkeypatch.setattr(allocator, "_glibc", RefusingLibc)
    assert allocator.keep_freed_memory() is False
