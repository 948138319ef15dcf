"""Hypothesis profiles for the whole test suite (shipped in the release too).

- "default": 30 examples per property, no deadline (timings are noisy),
  derandomized and without an example database: every run of a check draws
  the same examples, so a student's `check` gives the same answer each time
  and no failing example is stored and replayed (.hypothesis/ is never made).
- "ci": the same with 15 examples; selected automatically when the
  environment variable CI is set.
- "explore": random examples, still no database. For hunting flaky
  tolerances: `pytest tests/public --hypothesis-profile=explore
  --hypothesis-seed=N` (tests/test_public_seeds.py runs it for several N).
Override with `pytest --hypothesis-profile=<name>`.
"""
import os

from hypothesis import settings

settings.register_profile("default", max_examples=30, deadline=None, derandomize=True, database=None)
settings.register_profile("ci", max_examples=15, deadline=None, derandomize=True, database=None)
settings.register_profile("explore", max_examples=30, deadline=None, derandomize=False, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "default")
