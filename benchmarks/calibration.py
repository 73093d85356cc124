"""``make reproduce-calibration``: B8, blackbox calibration of the digits network.

The blackbox (:class:`DigitsBlackbox`) trains the digits demo's network (``tasks.DIGITS``) with
a configuration's depth N, final time T and regularisation weight alpha, from the seeded
initial controls, by trust-region Newton-CG (the demo's Gauss-Newton model and L-BFGS
preconditioner) until it has spent a fixed budget of work units (forward + adjoint
equivalents of the whole batch, ``TrustRegionParameters.max_work``): configurations compared
at equal cost. The objective is the validation cross-entropy; a diverged or failed training
is a failed evaluation. The a priori constraint is the layers' linear stability at the initial
controls: ``h / step_bound - RATIO <= 0`` (``pdeopt.step_bound`` on 16 training digits).

The run: the exhaustive grid of the small space (5 depths x 5 T x 5 alpha) once, then every
backend (NOMAD's MADS, Optuna's TPE, Py-BOBYQA, random search) for up to ``--max-evaluations``
evaluations from the demo's configuration where the method takes a start. Every evaluation is
a row of ``results/calibration/calibration.sqlite`` (Optuna's own tables beside them), so a
killed run resumes where it stopped (the same point is never trained twice, whichever backend
asks for it). Writes ``results/calibration/summary.json`` (B8: evaluations until the best
validation loss is within 1 % of the grid's best) and ``convergence.png``.

Under ``mpiexec -n 2`` two evaluations run at once, one per member of a Firedrake
``Ensemble`` (``--members``), and the database is the one a serial run writes: the grid and
random search in batches, NOMAD in blocks of two evaluations, Optuna asking two trials at a
time (its path then differs from the serial one's), BOBYQA in turn on the first member.
"""

import argparse
import itertools
import math
import time

import firedrake as fd
import numpy as np
from mpi4py import MPI

import pdeopt
from pdeopt.calibration import (BobyqaBackend, Calibration, Categorical, Constraint, Evaluation,
                                EvaluationStore,
                                Integer, NomadBackend, OptunaBackend, RandomSearch, Real,
                                SearchSpace, Status, best_so_far)

from _runs import parse_args
from tasks import DigitsTask

#: The linear-stability constraint: h at most this many times the initial layers' bound. The
#: demo's own start (h = 0.25) is 8.8 times its bound (0.028): a tighter ratio would exclude it.
RATIO = 10.0
#: Per size: the digits kept, the work budget per evaluation, the grid's values per variable
#: and the backends' evaluation cap.
SIZES = {
    "full": {"limit": None, "budget": 30.0, "depth": (1, 2, 3, 4, 5),
             "T": (0.25, 0.5, 1.0, 2.0, 4.0), "alpha": (1e-5, 1e-4, 1e-3, 1e-2, 1e-1),
             "max_evaluations": 100, "large_evaluations": 60},
    "ci": {"limit": 150, "budget": 6.0, "depth": (1, 2), "T": (0.5, 2.0),
           "alpha": (1e-4, 1e-2), "max_evaluations": 5, "large_evaluations": 5},
}
#: The demo's configuration of the small space: the backends' start.
START = {"depth": 4, "T": 1.0, "alpha": 1e-3}
BACKENDS = ("nomad", "optuna", "bobyqa", "random")


#: Configuration names -> ``tasks.DIGITS`` settings (the others keep the demo's values).
SETTINGS = {"depth": "N", "channels": "C", "T": "T", "alpha": "alpha", "beta": "beta",
            "scheme": "scheme", "basis": "basis"}


class DigitsBlackbox:
    """Train the digits network with a configuration for ``budget`` work units; the
    validation cross-entropy. Collective over ``comm`` (the mesh).

    A configuration's ``resolution`` (default 8) puts the digits on an n×n grid
    (``pdeopt.load_digits``: their Q1 interpolants, by Firedrake); the grids and splits are
    built once per resolution.
    """

    def __init__(self, budget, limit=None, comm=MPI.COMM_WORLD):
        self.budget, self.limit, self.comm = float(budget), limit, comm
        self.inputs = {}

    def task(self, config):
        n = int(config.get("resolution", 8))
        if n not in self.inputs:
            grid = pdeopt.PixelGrid(n, comm=self.comm)
            self.inputs[n] = (grid, pdeopt.load_digits(grid, seed=0, limit=self.limit))
        grid, data = self.inputs[n]
        changes = {SETTINGS[k]: v for k, v in config.items() if k in SETTINGS}
        return DigitsTask(grid=grid, data=data, **changes)

    def validation_loss(self, task, theta):
        """Mean cross-entropy of the validation digits."""
        v = task.validation
        p = task.model.probabilities(theta, v.x)
        return float(-np.mean(np.log(np.maximum(p[np.arange(len(p)), v.labels], 1e-300))))

    def stability(self, config):
        """``h / step_bound(initial controls) - RATIO``: <= 0 where feasible."""
        task = self.task(config)
        net = task.model.network
        theta = task.initial_controls(0)[:net.layout.size]
        bound = pdeopt.step_bound(net, theta, task.train.x[:, :16])
        return net.step / bound - RATIO if bound > 0 else math.inf

    def __call__(self, config, seed, report):
        task = self.task(config)
        theta0 = task.initial_controls(seed)
        J = task.reduced_functional(theta0)

        def callback(iteration, theta, objective, gradient_norm):
            report(iteration, self.validation_loss(task, theta))  # Optuna's pruner sees it

        solver = pdeopt.TrustRegionNewtonCG(
            J, parameters={"max_it": 10**6, "max_work": self.budget, "gatol": 1e-6},
            hessian=pdeopt.GaussNewtonHessian(), preconditioner=pdeopt.LMVMPC(),
            solver_parameters={"ksp_max_it": 30}, callback=callback,
            options_prefix="pdeopt_tr_calibration_")
        result = solver.solve(theta0)
        return Evaluation(objective=self.validation_loss(task, result.theta),
                          work=result.counts.work, message=result.reason.name)


def large_space(blackbox):
    """Seven variables, discretisation and training together (issue 18's payoff study)."""
    return SearchSpace([Integer("depth", 2, 8), Integer("channels", 4, 12),
                        Real("T", 0.25, 4.0, log=True), Real("alpha", 1e-5, 1e-1, log=True),
                        Real("beta", 1e-4, 1.0, log=True),
                        Categorical("scheme", ("parabolic", "forward_euler", "leapfrog")),
                        Categorical("resolution", (8, 12, 16))],
                       constraints=[Constraint("stability", blackbox.stability)])


#: The digits demo's configuration in the large space.
LARGE_START = {"depth": 4, "channels": 8, "T": 1.0, "alpha": 1e-3, "beta": 1e-2,
               "scheme": "parabolic", "resolution": 8}


def retrain(blackbox, config, iterations):
    """One network of ``config`` trained as the digits demo trains each of its starts
    (seed 0, the subsampled Gauss-Newton model, ``iterations`` trust-region steps): its
    validation and test accuracy."""
    task = blackbox.task(config)
    theta0 = task.initial_controls(0)
    result = pdeopt.TrustRegionNewtonCG(
        task.reduced_functional(theta0), parameters={"max_it": iterations, "gatol": 1e-6},
        hessian=pdeopt.SubsampledHessian(0.1, pdeopt.GaussNewtonHessian()),
        preconditioner=pdeopt.LMVMPC(), solver_parameters={"ksp_max_it": 30},
        options_prefix="pdeopt_tr_calibration_").solve(theta0)
    return {"config": dict(config),
            "validation_accuracy": task.accuracy(result.theta, "validation"),
            "test_accuracy": task.accuracy(result.theta, "test"),
            "iterations": result.iterations}


def large_study(args, comm, out, store, blackbox, ensemble):
    """NOMAD on the large space from the demo's configuration, then the best configuration
    and the demo's retrained at the demo's budget: ``results/calibration/large.json``."""
    t0 = time.perf_counter()
    s = SIZES[args.size]
    space = large_space(blackbox)
    start = LARGE_START
    calibration = Calibration(blackbox, space, store, study=f"digits-large-{args.size}",
                              seed=args.seed, ensemble=ensemble)
    result = calibration.run(NomadBackend(start=start, seed=args.seed),
                             args.max_evaluations or s["large_evaluations"])
    iterations = 250 if args.size == "full" else 4
    summary = {"best_config": result.best_config, "best_objective": result.best_objective,
               "evaluations": len(result.records), "counts": result.counts,
               "retrained": {"calibrated": retrain(blackbox, result.best_config, iterations),
                             "demo": retrain(blackbox, start, iterations)},
               "retrain_iterations": iterations, "size": args.size,
               "wall_seconds": time.perf_counter() - t0}
    pdeopt.write_json(out / "large.json", summary, comm)
    pdeopt.print0(summary, comm=comm)


def small_space(blackbox, size):
    """Depth, T and alpha over the grid's ranges, with the stability constraint."""
    s = SIZES[size]
    constraint = Constraint("stability", blackbox.stability)
    return SearchSpace([Integer("depth", min(s["depth"]), max(s["depth"])),
                        Real("T", min(s["T"]), max(s["T"]), log=True),
                        Real("alpha", min(s["alpha"]), max(s["alpha"]), log=True)],
                       constraints=[constraint])


def backend(name, space, seed):
    start = dict(START, depth=min(START["depth"], space.variables[0].high))  # ci: depth <= 2
    if name == "nomad":
        return NomadBackend(start=start, seed=seed)
    if name == "optuna":
        return OptunaBackend(start=start, seed=seed)
    if name == "bobyqa":
        return BobyqaBackend(start=start)
    return RandomSearch(seed=seed)


def evaluations_to_within(records, target):
    """1-based index of the first evaluation whose best-so-far is within ``target``."""
    curve = best_so_far(records)
    hits = np.nonzero(curve <= target)[0]
    return int(hits[0]) + 1 if len(hits) else None


def plot(curves, grid_best, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, label=name)
    ax.axhline(grid_best, color="k", lw=0.8, ls="--", label="grid best")
    ax.axhline(1.01 * grid_best, color="k", lw=0.5, ls=":", label="grid best + 1 %")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best validation cross-entropy")
    ax.set_yscale("log")
    ax.set_title("B8: calibration of the digits network (depth, T, alpha)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="full", choices=sorted(SIZES))
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help=f"comma-separated, of {','.join(BACKENDS)}")
    parser.add_argument("--max-evaluations", type=int, default=None,
                        help="per backend (default: the size's)")
    parser.add_argument("--seed", type=int, default=0, help="the initial-control seed")
    parser.add_argument("--study", default="small", choices=("small", "large"),
                        help="small: B8 on (depth, T, alpha); large: NOMAD on seven variables "
                             "and the best configuration retrained against the demo's")
    parser.add_argument("--members", type=int, default=None,
                        help="concurrent evaluations: the members of a Firedrake Ensemble "
                             "(default: one per rank of mpiexec)")
    args = parse_args(parser, argv)
    names = [b for b in args.backends.split(",") if b]
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown:
        raise pdeopt.OptionError(f"--backends: unknown {unknown}; known: {list(BACKENDS)}.")
    comm = MPI.COMM_WORLD
    members = args.members or comm.size
    if members < 1 or comm.size % members:
        raise pdeopt.OptionError(f"--members={members} must divide the {comm.size} ranks.")
    ensemble = fd.Ensemble(comm, comm.size // members)
    comm = ensemble.global_comm
    t0 = time.perf_counter()
    s = SIZES[args.size]
    cap = args.max_evaluations or s["max_evaluations"]
    out = pdeopt.results_dir("calibration")
    if comm.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    comm.Barrier()
    blackbox = DigitsBlackbox(s["budget"], s["limit"], ensemble.comm)
    if args.study == "large":
        with EvaluationStore(out / "calibration.sqlite", comm=comm) as store:
            large_study(args, comm, out, store, blackbox, ensemble)
        return
    space = small_space(blackbox, args.size)
    study = f"digits-small-{args.size}"
    with EvaluationStore(out / "calibration.sqlite", comm=comm) as store:
        calibration = Calibration(blackbox, space, store, study=study, seed=args.seed,
                                  ensemble=ensemble)
        grid = [dict(zip(("depth", "T", "alpha"), p))
                for p in itertools.product(s["depth"], s["T"], s["alpha"])]
        for point, record in zip(grid, calibration.evaluate_many(grid, "grid")):
            pdeopt.print0(f"grid {point}: {record.status.value} {record.objective}",
                          comm=comm)
        grid_records = store.records(study, "grid")
        ok = [r.objective for r in grid_records if r.status is Status.OK]
        grid_best = min(ok)
        results = {name: calibration.run(backend(name, space, args.seed), cap)
                   for name in names}
        curves = {name: best_so_far(r.records) for name, r in results.items()}
        summary = {
            "grid_best": grid_best, "grid_points": len(grid_records),
            "grid_feasible": len(ok),
            "evaluations_to_within_1pct": {
                name: evaluations_to_within(r.records, 1.01 * grid_best)
                for name, r in results.items()},
            "best_found": {name: r.best_objective for name, r in results.items()},
            "best_config": {name: r.best_config for name, r in results.items()},
            "evaluations": {name: len(r.records) for name, r in results.items()},
            "budget_work_units": s["budget"], "stability_ratio": RATIO, "size": args.size,
            "wall_seconds": time.perf_counter() - t0,
            "database_seconds": sum(r.wall for r in store.records(study))}
    if comm.rank == 0:
        plot({k: list(v) for k, v in curves.items()}, grid_best, out / "convergence.png")
    pdeopt.write_json(out / "summary.json", summary, comm)
    pdeopt.print0(summary, comm=comm)


if __name__ == "__main__":
    main()
