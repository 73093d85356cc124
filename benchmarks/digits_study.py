"""The digits demo's network under other settings: validation and test accuracy of each.

    python benchmarks/digits_study.py [key=value ...]           # one configuration
    python benchmarks/digits_study.py --study                    # the study in STUDY

Trains as ``make demo`` does (trust-region Newton-CG, Gauss-Newton model, L-BFGS
preconditioner, 60 iterations, the same split and seed) with the given settings changed:
``scheme``, ``C``, ``N``, ``T``, ``alpha``, ``beta``, ``seed`` (of the initial controls),
``activation`` and ``opening`` (``tanh``, ``softplus``, ``smooth_relu``; ``opening=none`` is the
linear opening layer), ``projection`` (1: variable projection of the classifier's weights),
``iterations``. ``--limit n`` keeps the first n digits (for the tests).
Prints one JSON line per configuration and appends it to
``results/digits_study/runs.jsonl`` (rank 0): the settings, the validation and test accuracy
at the end and at each accepted iterate, the training loss and the seconds taken.
"""

import argparse
import json
import os
import time
from pathlib import Path

import pdeopt
from petsc4py import PETSc
from pdeopt.solvers.preconditioners import LMVMPC

DEMO = dict(scheme="parabolic", C=8, N=4, T=2.0, alpha=1e-3, beta=1e-2, seed=0,
            activation="tanh", opening="none", projection=0, iterations=60)
STUDY = ["", "T=1", "T=0.5", "T=4", "alpha=3e-3", "alpha=1e-2", "beta=1e-1", "C=16", "N=8",
         "N=8 T=1", "N=2 T=1", "T=1 alpha=3e-3", "T=1 beta=1e-1", "T=1 seed=1",
         "T=1 projection=1", "opening=tanh", "opening=smooth_relu",
         "activation=softplus", "activation=smooth_relu", "scheme=forward_euler",
         "scheme=leapfrog"]
ACTIVATIONS = {"tanh": pdeopt.Tanh, "softplus": pdeopt.Softplus,
               "smooth_relu": pdeopt.SmoothReLU}


def settings(overrides):
    cfg = dict(DEMO)
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in cfg:
            raise pdeopt.OptionError(f"unknown setting {key!r}; known: {sorted(cfg)}.")
        cfg[key] = type(DEMO[key])(value)
    return cfg


def train(cfg, data, grid):
    t0 = time.perf_counter()
    train, val, test = data["train"], data["validation"], data["test"]
    ops = pdeopt.assemble_operators(grid)
    opening = None if cfg["opening"] == "none" else ACTIVATIONS[cfg["opening"]]()
    scheme = pdeopt.SCHEMES[cfg["scheme"]](ops, ACTIVATIONS[cfg["activation"]](),
                                           step=cfg["T"] / cfg["N"])
    model = pdeopt.Model(pdeopt.Network(scheme, channels=cfg["C"], depth=cfg["N"],
                                        opening_activation=opening),
                         pdeopt.PooledClassifier(grid, channels=cfg["C"], classes=10))
    regularizer = pdeopt.Regularizer(model.layout, alpha=cfg["alpha"], beta=cfg["beta"],
                                     step=cfg["T"] / cfg["N"])
    Jhat = pdeopt.ReducedFunctional(model, train.x, train.labels, regularizer,
                                    theta=model.initial_controls(seed=cfg["seed"]))
    J = pdeopt.ProjectedReducedFunctional(Jhat) if cfg["projection"] else Jhat
    full = J.full if cfg["projection"] else (lambda theta: theta)
    trajectory = []

    def record(it, theta, f, gnorm):
        theta = full(theta)
        trajectory.append([it, model.accuracy(theta, val.x, val.labels),
                           model.accuracy(theta, test.x, test.labels)])

    result = pdeopt.TrustRegionNewtonCG(
        J, {"max_it": cfg["iterations"], "hessian": "gauss_newton", "gatol": 1e-6}, preconditioner=LMVMPC(),
        solver_parameters={"ksp_max_it": 30}, monitor=False,
        callback=record).solve(Jhat.point[:J.size])
    theta = full(result.theta)
    return dict(cfg, validation_accuracy=model.accuracy(theta, val.x, val.labels),
                test_accuracy=model.accuracy(theta, test.x, test.labels),
                train_loss=float(result.objective - regularizer.value(theta)),
                seconds=time.perf_counter() - t0, trajectory=trajectory)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*", help="key=value changes to the demo's settings")
    parser.add_argument("--study", action="store_true", help="run every configuration of STUDY")
    parser.add_argument("--limit", type=int, default=None, help="use the first n digits")
    args = parser.parse_args()
    for name in ("study", "limit"):  # argparse's options, not PETSc's
        PETSc.Options().delValue(f"--{name}")
    grid = pdeopt.PixelGrid(8)
    data = pdeopt.load_digits(grid, seed=0, limit=args.limit)
    out = Path(os.environ.get("PDEOPT_RESULTS", "results")) / "digits_study"
    for overrides in ([s.split() for s in STUDY] if args.study else [args.settings]):
        run = train(settings(overrides), data, grid)
        line = json.dumps(run)
        pdeopt.print0(line)
        if grid.comm.rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            with open(out / "runs.jsonl", "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
