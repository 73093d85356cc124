"""The digits demo's network under other settings: validation and test accuracy of each.

    python benchmarks/digits_study.py [key=value ...]        # one configuration
    python benchmarks/digits_study.py --study coordinates     # a study of STUDIES

Trains one network as ``make demo`` trains each of its starts (trust-region Newton-CG,
Gauss-Newton model, L-BFGS preconditioner, 40 iterations, the same split) with the given
settings changed:
``scheme``, ``C``, ``N``, ``T``, ``alpha``, ``beta``, ``seed`` (of the initial controls),
``activation`` and ``opening`` (``tanh``, ``softplus``, ``smooth_relu``; ``opening=none`` is the
linear opening layer), ``basis`` (``differences`` or ``shifts``: the coordinates of the
stencils), ``scale`` and ``readout_scale`` (of the initial layer and classifier weights),
``projection`` (1: variable projection of the classifier's weights), ``iterations``.
``--limit n`` keeps the first n digits (for the tests). The study ``settings`` varies the
earlier demo (difference coordinates, T = 2, zero classifier, 60 iterations) one setting at a
time; ``coordinates`` trains the present demo's four starts and the same four starts with
the earlier coordinates and initial scales.
Prints one JSON line per configuration and appends it to
``results/digits_study/runs.jsonl`` (rank 0): the settings, the validation and test accuracy
at the end and at each accepted iterate, the class probabilities at the end, the training loss
and the seconds taken. Then the runs of the file that differ only in the seed vote (their class
probabilities averaged, as the demo's starts do): one line per group in ``votes.jsonl``.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import pdeopt
from petsc4py import PETSc
from pdeopt.solvers.preconditioners import LMVMPC

DEMO = dict(scheme="parabolic", C=8, N=4, T=1.0, alpha=1e-3, beta=1e-2, seed=0,
            activation="tanh", opening="none", basis="shifts", scale=2.5, readout_scale=1.0,
            projection=0, iterations=40)
EARLIER = "basis=differences T=2 scale=1 readout_scale=0 iterations=60"
STUDIES = {
    "settings": [f"{EARLIER} {change}" for change in (
        "", "T=1", "T=0.5", "T=4", "alpha=3e-3", "alpha=1e-2", "beta=1e-1", "C=16", "N=8",
        "N=8 T=1", "N=2 T=1", "T=1 alpha=3e-3", "T=1 beta=1e-1", "T=1 seed=1",
        "T=1 projection=1", "opening=tanh", "opening=smooth_relu", "activation=softplus",
        "activation=smooth_relu", "scheme=forward_euler", "scheme=leapfrog")],
    "coordinates": [f"{change} seed={seed}" for change in (
        "", "basis=differences scale=1 readout_scale=0") for seed in range(4)],
}
ACTIVATIONS = {"tanh": pdeopt.Tanh, "softplus": pdeopt.Softplus,
               "smooth_relu": pdeopt.SmoothReLU}
BASES = {"differences": tuple(pdeopt.GRID_BASIS), "shifts": tuple(pdeopt.GRID_SHIFTS)}


def settings(overrides):
    cfg = dict(DEMO)
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in cfg:
            raise pdeopt.OptionError(f"unknown setting {key!r}; known: {sorted(cfg)}.")
        cfg[key] = type(DEMO[key])(value)
    if cfg["basis"] not in BASES:
        raise pdeopt.OptionError(f"basis must be one of {sorted(BASES)}, got {cfg['basis']!r}.")
    return cfg


def train(cfg, data, grid):
    t0 = time.perf_counter()
    train, val, test = data["train"], data["validation"], data["test"]
    ops = pdeopt.assemble_operators(grid, basis=BASES[cfg["basis"]])
    opening = None if cfg["opening"] == "none" else ACTIVATIONS[cfg["opening"]]()
    scheme = pdeopt.SCHEMES[cfg["scheme"]](ops, ACTIVATIONS[cfg["activation"]](),
                                           step=cfg["T"] / cfg["N"])
    model = pdeopt.Model(pdeopt.Network(scheme, channels=cfg["C"], depth=cfg["N"],
                                        opening_activation=opening),
                         pdeopt.PooledClassifier(grid, channels=cfg["C"], classes=10))
    regularizer = pdeopt.Regularizer(model.layout, alpha=cfg["alpha"], beta=cfg["beta"],
                                     step=cfg["T"] / cfg["N"])
    theta0 = model.initial_controls(seed=cfg["seed"], scale=cfg["scale"],
                                    readout_scale=cfg["readout_scale"])
    Jhat = pdeopt.ReducedFunctional(model, train.x, train.labels, regularizer, theta=theta0)
    J = pdeopt.ProjectedReducedFunctional(Jhat) if cfg["projection"] else Jhat
    full = J.full if cfg["projection"] else (lambda theta: theta)
    trajectory = []

    def record(it, theta, f, gnorm):
        theta = full(theta)
        trajectory.append([it, model.accuracy(theta, val.x, val.labels),
                           model.accuracy(theta, test.x, test.labels)])

    result = pdeopt.TrustRegionNewtonCG(
        J, {"max_it": cfg["iterations"], "hessian": "gauss_newton", "gatol": 1e-6},
        preconditioner=LMVMPC(),
        solver_parameters={"ksp_max_it": 30}, monitor=False,
        callback=record).solve(Jhat.point[:J.size])
    theta = full(result.theta)
    p_val, p_test = model.probabilities(theta, val.x), model.probabilities(theta, test.x)
    return dict(cfg, validation_accuracy=model.accuracy(theta, val.x, val.labels),
                test_accuracy=model.accuracy(theta, test.x, test.labels),
                validation_probabilities=np.round(p_val, 8).tolist(),
                test_probabilities=np.round(p_test, 8).tolist(),
                train_loss=float(result.objective - regularizer.value(theta)),
                seconds=time.perf_counter() - t0, trajectory=trajectory)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*", help="key=value changes to the demo's settings")
    parser.add_argument("--study", choices=STUDIES, help="run every configuration of a study")
    parser.add_argument("--limit", type=int, default=None, help="use the first n digits")
    args = parser.parse_args()
    for name in ("study", "limit"):  # argparse's options, not PETSc's
        PETSc.Options().delValue(f"--{name}")
    grid = pdeopt.PixelGrid(8)
    data = pdeopt.load_digits(grid, seed=0, limit=args.limit)
    out = Path(os.environ.get("PDEOPT_RESULTS", "results")) / "digits_study"
    for overrides in ([s.split() for s in STUDIES[args.study]] if args.study
                      else [args.settings]):
        run = train(settings(overrides), data, grid)
        line = json.dumps(run)
        pdeopt.print0(json.dumps({k: v for k, v in run.items() if "probabilities" not in k}))
        if grid.comm.rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            with open(out / "runs.jsonl", "a") as f:
                f.write(line + "\n")
    if grid.comm.rank == 0:  # every group in the file, this run's and earlier ones
        lines = list(votes([json.loads(line) for line in
                            (out / "runs.jsonl").read_text().splitlines()], data))
        (out / "votes.jsonl.tmp").write_text("".join(line + "\n" for line in lines))
        (out / "votes.jsonl.tmp").replace(out / "votes.jsonl")
        print("\n".join(lines))


def votes(runs, data):
    """Accuracy of the averaged class probabilities of the runs that differ only in the seed
    (the last run of each seed; runs without probabilities are left out)."""
    groups = {}
    for run in runs:
        if "test_probabilities" in run:
            key = json.dumps({k: run.get(k, DEMO[k]) for k in DEMO if k != "seed"})
            groups.setdefault(key, {})[run["seed"]] = run
    for key, group in groups.items():
        if len(group) > 1:
            acc = {name: float(np.mean(np.argmax(np.mean([r[f"{name}_probabilities"]
                                                          for r in group.values()], axis=0),
                                                 axis=1) == data[name].labels))
                   for name in ("validation", "test")}
            yield json.dumps({"vote": json.loads(key), "seeds": sorted(group),
                              **{f"{k}_accuracy": v for k, v in acc.items()}})


if __name__ == "__main__":
    main()
