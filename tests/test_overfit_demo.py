"""task2_8's overfitting demonstration passes for a correct net whatever the machine's rounding.

ConvolutionalNetworks.ipynb trains the reference ThreeLayerConvNet on 100 generated training
images (OVERFIT_EPOCHS epochs, batch 50, Adam at overfit_lr) and asserts 90% training accuracy
(task2_8_overfit). A correct student conv sums in another order than the reference, and a laptop
runs another number of BLAS threads: both change float rounding, and with 15 epochs one BLAS thread
gave 75% on the example submission. So the demonstration must clear its target with a margin for
several seeds, with one BLAS thread and with the default threads. Slow: about 10 s of training.
"""
import numpy as np
import pytest
from test_patterns_gap import notebook_cell_source
from threadpoolctl import threadpool_limits

EPOCHS = 20        # OVERFIT_EPOCHS in ConvolutionalNetworks.ipynb
LEARNING_RATE = 3e-3  # overfit_lr there, on the patterns
TARGET = 0.90      # task2_8_overfit's assert
MARGIN = 0.05


def test_the_settings_here_are_the_notebooks():
    params = notebook_cell_source("ConvolutionalNetworks.ipynb", "OVERFIT_EPOCHS = ")
    assert f"OVERFIT_EPOCHS = {EPOCHS} " in params
    train = notebook_cell_source("ConvolutionalNetworks.ipynb", "num_epochs=OVERFIT_EPOCHS")
    for setting in ("num_train = 100", 'overfit_lr = 3e-3 if data["name"] == "patterns"',
                    "ThreeLayerConvNet(weight_scale=1e-2)", 'batch_size=50, update_rule="adam"'):
        assert setting in train, setting
    check = notebook_cell_source("ConvolutionalNetworks.ipynb", "assert train_acc >= ")
    assert f"assert train_acc >= {TARGET}" in check


@pytest.mark.slow
@pytest.mark.parametrize("seed, blas_threads", [(231, 1), (1, 1), (4, 1), (4, None)])
def test_a_correct_net_overfits_100_patterns_with_a_margin(seed, blas_threads):
    from cs_layers.cnn import ThreeLayerConvNet
    from cs_layers.data import load_patterns
    from cs_layers.solver import Solver

    data = load_patterns()
    small = {"X_train": data["X_train"][:100], "y_train": data["y_train"][:100],
             "X_val": data["X_val"][:100], "y_val": data["y_val"][:100]}
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        np.random.seed(seed)
        solver = Solver(ThreeLayerConvNet(weight_scale=1e-2), small, num_epochs=EPOCHS, batch_size=50,
                        update_rule="adam", optim_config={"learning_rate": LEARNING_RATE}, verbose=False)
        solver.train()
        acc = solver.check_accuracy(small["X_train"], small["y_train"])
    assert acc >= TARGET + MARGIN, (
        f"seed {seed}, BLAS threads {blas_threads or 'default'}: the reference reached {acc:.0%} training "
        f"accuracy on 100 patterns after {EPOCHS} epochs, too close to the notebook's {TARGET:.0%}; "
        "raise OVERFIT_EPOCHS (and EPOCHS here)")
