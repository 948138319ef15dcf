"""Notebook runs under the autograder: no retraining of what the grader scores itself (given code).

The autograder executes both notebooks with CS_LAYERS_GRADING=1, to record every check and
your written answers. Training there again would only repeat what the hidden tests already
grade from your module and the files you submitted (convnet_model.npz, challenge_model.pt),
at a minute or more per notebook and student. So in a grading run:

- reuse(path): True when the submitted file `path` is there, so a training cell loads it
  instead of training (task2_9's checkpoint, task3_5's challenge model);
- demo_batches(loader): the demonstration trainings of task3_1 to task3_4 (and the
  optimiser comparison) see only the first DEMO_BATCHES batches of each epoch, and measure
  each epoch's validation accuracy on the first DEMO_BATCHES validation batches, so the cells
  still run every line and draw their plots (the challenge model's accuracy is still measured
  on the whole validation and test sets);
- active(): the notebook prints its accuracy targets without asserting them (a few batches
  reach none of them; the hidden tests grade the code instead), and skips its slowest speed
  demonstration (autocast on the CPU).

Both notebooks also switch %autoreload off (nothing is edited during a grading run), and
ConvolutionalNetworks runs its two largest gradient checks on smaller inputs.

Outside the grader (CS_LAYERS_GRADING unset) nothing changes: everything trains in full.
"""
import itertools
import os
from pathlib import Path

DEMO_BATCHES = 3  # batches per epoch (and per validation) of a demonstration training in a grading run


def active():
    """True in the autograder's run of a notebook (CS_LAYERS_GRADING=1)."""
    return os.environ.get("CS_LAYERS_GRADING", "") == "1"


def reuse(path):
    """True in a grading run when the submitted file `path` exists: load it, do not train."""
    return active() and Path(path).is_file()


def demo_batches(loader):
    """`loader` itself; in a grading run, an iterator over its first DEMO_BATCHES batches."""
    return itertools.islice(loader, DEMO_BATCHES) if active() else loader
