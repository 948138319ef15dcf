"""Train the default ThreeLayerConvNet from the command line (given code).

    python -m cs_layers.train --data auto --epochs 2
    python -m cs_layers.train --data cifar10 --epochs 5 --save convnet_model.npz

It loads the data with cs_layers.data.get_data (CIFAR-10 when downloaded,
else the generated patterns), trains with the Solver (progress bar), and prints
the final train / validation / test accuracy. It reports; it does not judge.
"""
import argparse
import sys
import time

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m cs_layers.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="auto", choices=["auto", "patterns", "digits", "cifar10"],
                   help="dataset (auto: CIFAR-10 if downloaded, else the generated patterns)")
    p.add_argument("--epochs", type=int, default=2, help="passes over the training set")
    p.add_argument("--batch-size", type=int, default=50, help="minibatch size")
    p.add_argument("--update-rule", default="adam", choices=["sgd", "sgd_momentum", "rmsprop", "adam"])
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    p.add_argument("--lr-decay", type=float, default=1.0, help="learning-rate factor per epoch")
    p.add_argument("--reg", type=float, default=1e-3, help="L2 regularisation strength")
    p.add_argument("--weight-scale", type=float, default=1e-2, help="std of the initial weights")
    p.add_argument("--num-filters", type=int, default=32)
    p.add_argument("--filter-size", type=int, default=7)
    p.add_argument("--hidden-dim", type=int, default=100)
    p.add_argument("--seed", type=int, default=0, help="numpy seed (initial weights, minibatches)")
    p.add_argument("--save", default=None, metavar="PATH", help="save the trained model (.npz) here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "num_filters", "filter_size", "hidden_dim"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be a positive integer")
    return args


def main(argv=None):
    args = parse_args(argv)
    from cs_layers.cnn import ThreeLayerConvNet, save_model
    from cs_layers.data import get_data
    from cs_layers.solver import Solver

    np.random.seed(args.seed)
    try:
        data = get_data(args.data)
    except FileNotFoundError as err:  # CIFAR-10 asked for but not downloaded: the message says how
        print(f"train: {err}", file=sys.stderr)
        return 1
    model = ThreeLayerConvNet(input_dim=data["X_train"].shape[1:], num_filters=args.num_filters,
                              filter_size=args.filter_size, hidden_dim=args.hidden_dim,
                              num_classes=len(data["class_names"]), weight_scale=args.weight_scale,
                              reg=args.reg)
    print(f"Training ThreeLayerConvNet (num_filters={args.num_filters}, filter_size={args.filter_size}, "
          f"hidden_dim={args.hidden_dim}) on {data['name']} for {args.epochs} epoch(s): "
          f"{args.update_rule}, lr {args.lr:g}, batch {args.batch_size}, reg {args.reg:g}")
    solver = Solver(model, data, update_rule=args.update_rule,
                    optim_config={"learning_rate": args.lr}, lr_decay=args.lr_decay,
                    num_epochs=args.epochs, batch_size=args.batch_size,
                    print_every=10 ** 9, verbose=not args.quiet)
    start = time.perf_counter()
    solver.train()
    seconds = time.perf_counter() - start

    train_acc = solver.check_accuracy(data["X_train"], data["y_train"])
    val_acc = solver.check_accuracy(data["X_val"], data["y_val"])
    test_acc = solver.check_accuracy(data["X_test"], data["y_test"])
    print(f"dataset {data['name']}: train acc {train_acc:.3f}, val acc {val_acc:.3f}, "
          f"test acc {test_acc:.3f} ({args.epochs} epoch(s), {seconds:.1f} s)")
    if args.save:
        save_model(args.save, model, dataset=data["name"])
        print(f"saved the model to {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
