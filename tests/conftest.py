"""Hypothesis profiles for the whole test suite.

- "default": 30 examples per property, no deadline (timings are noisy here).
- "ci": 15 examples, no deadline, derandomized so CI runs are reproducible;
  selected automatically when the environment variable CI is set.
Override with `pytest --hypothesis-profile=<name>`.
"""
import os

from hypothesis import settings

settings.register_profile("default", max_examples=30, deadline=None)
settings.register_profile("ci", max_examples=15, deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")
