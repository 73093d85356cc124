"""The digits demo's network under other settings: validation and test accuracy of each.

    python benchmarks/digits_study.py [key=value ...]        # one configuration
    python benchmarks/digits_study.py --study coordinates     # a study of STUDIES

Trains the demo's network (``tasks.DIGITS``) from one start with the given settings changed,
by default with trust-region Newton-CG (the whole batch's Gauss-Newton model, the L-BFGS
preconditioner, 40 iterations) on the demo's split. The settings:
``scheme`` (a key of ``pdeopt.SCHEMES``), ``C``, ``N``, ``T``, ``alpha``, ``beta``, ``seed``
(of the initial controls), ``activation`` and ``opening`` (``tanh``, ``softplus``,
``smooth_relu``; ``opening=none`` is the linear opening layer), ``basis`` (``differences`` or
``shifts``: the coordinates of the stencils), ``scale`` and ``readout_scale`` (of the initial
layer and classifier weights), ``projection`` (1: variable projection of the classifier's
weights), ``iterations``, ``solver`` (``trust_region``, or ``tao``: PETSc TAO's limited-memory
BFGS, ``lmvm``) and ``hessian_sample`` (the fraction of the batch the trust region's
Gauss-Newton model takes, drawn afresh at every accepted iterate; ``make demo`` takes 0.1 and
250 iterations). ``--limit n`` keeps the first n digits (for the tests). The study
``settings`` varies a network of difference coordinates, T = 2, a zero initial classifier and
60 iterations one setting at a time; ``coordinates`` trains the demo's four starts in its
coordinates and initial scales, and in the difference coordinates with the classifier at zero.
Prints one JSON line per configuration and appends it to
``results/digits_study/runs.jsonl`` (rank 0): the settings, the validation and test accuracy
at the end and at each accepted iterate, the class probabilities at the end, the training loss
and the seconds taken. Then the runs of the file that differ only in the seed vote (their class
probabilities averaged, as the demo's starts do): one line per group in ``votes.jsonl``.
"""

import argparse
import json
import time

import numpy as np

import pdeopt
from pdeopt.parallel import results_dir

from _runs import parse_args, write_lines
from tasks import DIGITS, DigitsTask, digits

DEMO = dict(DIGITS, seed=0, projection=0, iterations=40, solver="trust_region",
            hessian_sample=1.0)
DIFFERENCES = "basis=differences T=2 scale=1 readout_scale=0 iterations=60"
STUDIES = {
    "settings": [f"{DIFFERENCES} {change}" for change in (
        "", "T=1", "T=0.5", "T=4", "alpha=3e-3", "alpha=1e-2", "beta=1e-1", "C=16", "N=8",
        "N=8 T=1", "N=2 T=1", "T=1 alpha=3e-3", "T=1 beta=1e-1", "T=1 seed=1",
        "T=1 projection=1", "opening=tanh", "opening=smooth_relu", "activation=softplus",
        "activation=smooth_relu", "scheme=forward_euler", "scheme=leapfrog",
        "scheme=verlet")],
    "coordinates": [f"{change} seed={seed}" for change in (
        "", "basis=differences scale=1 readout_scale=0") for seed in range(4)],
}
SOLVERS = ("trust_region", "tao")


def settings(overrides):
    """The demo's settings with ``key=value`` ``overrides``, each of the default's type."""
    cfg = dict(DEMO)
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in cfg:
            raise pdeopt.OptionError(f"unknown setting {key!r}; known: {sorted(cfg)}.")
        cfg[key] = type(DEMO[key])(value)
    if cfg["solver"] not in SOLVERS:
        raise pdeopt.OptionError(f"solver must be one of {SOLVERS}, got {cfg['solver']!r}.")
    return cfg


def minimise(J, theta0, cfg, callback):
    """The configured solver on ``J`` from ``theta0``: its result's final controls and
    objective. Every solver of the study is constructed, and its result read, here."""
    if cfg["solver"] == "tao":
        solver = pdeopt.TAOSolver(J, solver_parameters={"tao_type": "lmvm", "tao_gatol": 1e-6,
                                                        "tao_max_it": cfg["iterations"]},
                                  callback=callback)
    else:
        hessian = pdeopt.GaussNewtonHessian()
        if cfg["hessian_sample"] < 1:
            hessian = pdeopt.SubsampledHessian(cfg["hessian_sample"], hessian)
        solver = pdeopt.TrustRegionNewtonCG(
            J, parameters={"max_it": cfg["iterations"], "gatol": 1e-6}, hessian=hessian,
            preconditioner=pdeopt.LMVMPC(), solver_parameters={"ksp_max_it": 30},
            callback=callback)
    result = solver.solve(theta0)
    return result.theta, result.objective


def train(cfg, data, grid):
    t0 = time.perf_counter()
    task = DigitsTask(grid=grid, data=data, **{k: cfg[k] for k in DIGITS})
    model, val, test = task.model, task.validation, task.test
    Jhat = task.reduced_functional(task.initial_controls(cfg["seed"]))
    J = pdeopt.ProjectedReducedFunctional(Jhat) if cfg["projection"] else Jhat
    full = J.full if cfg["projection"] else (lambda theta: theta)
    trajectory = []

    def record(it, theta, f, gnorm):
        theta = full(theta)
        trajectory.append([it, model.accuracy(theta, val.x, val.labels),
                           model.accuracy(theta, test.x, test.labels)])

    theta, objective = minimise(J, Jhat.point[:J.size], cfg, record)
    theta = full(theta)
    p_val, p_test = model.probabilities(theta, val.x), model.probabilities(theta, test.x)
    return dict(cfg, validation_accuracy=model.accuracy(theta, val.x, val.labels),
                test_accuracy=model.accuracy(theta, test.x, test.labels),
                validation_probabilities=np.round(p_val, 8).tolist(),
                test_probabilities=np.round(p_test, 8).tolist(),
                train_loss=float(objective - task.regularizer.value(theta)),
                seconds=time.perf_counter() - t0, trajectory=trajectory)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*", help="key=value changes to the demo's settings")
    parser.add_argument("--study", choices=STUDIES, help="run every configuration of a study")
    parser.add_argument("--limit", type=int, default=None, help="use the first n digits")
    args = parse_args(parser)
    grid, data = digits(limit=args.limit)  # the same for every configuration
    out = results_dir("digits_study")
    for overrides in ([s.split() for s in STUDIES[args.study]] if args.study
                      else [args.settings]):
        run = train(settings(overrides), data, grid)
        line = json.dumps(run)
        pdeopt.print0(json.dumps({k: v for k, v in run.items() if "probabilities" not in k}))
        if grid.comm.rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            with open(out / "runs.jsonl", "a") as f:
                f.write(line + "\n")
    lines = None
    if grid.comm.rank == 0:  # every group in the file, this run's and earlier ones
        lines = list(votes([json.loads(line) for line in
                            (out / "runs.jsonl").read_text().splitlines()], data))
        print("\n".join(lines))
    write_lines(out / "votes.jsonl", lines, grid.comm)


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
