"""B5: time to a target training loss, trust-region Newton-CG against every peer.

    python benchmarks/optimizers.py [--size full|small|ci] [--seeds 0 1 2]
        [--task digits|regression|both] [--rows all|peers|targets] [--resume] [--json]

DESIGN.md §7, B5: wall time to a target training loss for TR-Newton-CG in the demo's default
configuration (Gauss-Newton model on a twentieth of the batch, drawn afresh at every accepted
iterate, one Krylov iteration per step while it is a sample's; L-BFGS preconditioner), divided
by that of the best-tuned Adam (learning rates 1e-3 … 1e-1, 2000 full-batch iterations), both
float64 on the same model, data and initial point; target = 1.05 × the best loss Adam
reaches; median over the seeds (each seed draws the initial controls); timing from the first
objective evaluation. Issue 19 adds the ratio to the fastest peer: Adam, torch's L-BFGS,
TAO ``lmvm`` and ``ntr``, and SciPy's ``trust-krylov`` and ``trust-ncg`` (exact Hessian
actions through the functional's NumPy interface).

The protocol, per seed and task: Adam runs first, with every learning rate, and fixes the
target. Every other optimizer then runs until it reaches the target (``fmin`` of the trust
region, ``-tao_fmin``, SciPy's callback) or has used the wall time of Adam's best run (its
budget; also an iteration limit), so its iterations, work and test accuracy are those of
reaching the target, and the time of a run that cannot reach it is bounded. Every optimizer
runs on pdeopt's own forward, adjoint and Hessian sweeps (torch's Adam and L-BFGS take the
reduced functional's gradient), so the comparison is of the algorithms alone.
Also run, for the table: the demo's model before issue 19 (a tenth of the batch, CG to its
tolerance), TR-Newton-CG with each preconditioner, with the Gauss-Newton model of the whole
batch, and on the projected functional (variable projection of the classifier's weights);
and, without a target and at equal work (``equal_work`` forward+adjoint equivalents), the
demo's trust region with its sample growing from ``growth_from`` accepted iterates on by
``GROWTH`` per iterate (Newton-CG on the whole batch once it is the whole batch) against
SciPy's ``trust-krylov``: their final losses and gradient norms.
The same comparison runs on the regression task of ``demos/surrogate`` (Firedrake-generated
diffusion-reaction data, probe readout): the demo's trust region, and the Gauss-Newton model
of the whole batch (that demo's; without a preconditioner, with and without variable
projection) against the same peers, its target 1.05 × the best loss Adam reaches there; its
run to a minimum uses the whole batch's model. Work is counted in forward+adjoint
equivalents: a gradient is 2, a Hessian or Gauss-Newton action 2 (a tangent-linear and a
reverse sweep), an objective alone 1; a sweep over a subsample of the batch counts its
fraction.

``--task`` picks the tasks (default both). ``--rows peers`` runs only the demo's trust region
(now and before) and its peers, the rows of the comparison, so that they can be timed in one
sitting; ``--rows targets`` only Adam's runs, which fix the targets and budgets. Every finished
run is kept in ``results/optimizers/runs-<size>.jsonl``; ``--resume`` reuses them, so a killed
full-size run continues where it stopped. ``--size full`` is B5 as defined (all 1078 training
digits; Adam's 10 000 gradients per seed, about 0.1 s each, dominate: about 20 minutes per
seed on one core); ``small`` uses 180 training digits and 300 Adam iterations per learning
rate, ``ci`` a few iterations for the tests.

Writes results/optimizers/summary.json, table.md and loss.png (rank 0). The tasks are
``tasks.py``'s, the optimizers run through ``adapters.py``, the summary is ``summary.py``'s.
"""

import argparse
import json
from types import MappingProxyType

import numpy as np

import torch
from mpi4py import MPI

from pdeopt.parallel import results_dir, write_json

from _runs import RunStore, parse_args
from adapters import SCIPY_METHODS, run_adam, run_lbfgs, run_scipy, run_tao, run_trust_region
from summary import TARGET_FACTOR, plot, records, summarise, table
from tasks import DigitsTask, RegressionTask

SIZES = {
    "full": dict(limit=None, adam_its=2000, tr_its=10_000, tao_its=10_000, lbfgs_its=10_000,
                 regression_samples=200, equal_work=2000, growth_from=250),
    "small": dict(limit=300, adam_its=300, tr_its=150, tao_its=150, lbfgs_its=150,
                  regression_samples=100, equal_work=600, growth_from=100),
    "ci": dict(limit=100, adam_its=8, tr_its=3, tao_its=3, lbfgs_its=3, regression_samples=20,
               equal_work=12, growth_from=1),
}
LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
#: The digits demo's Gauss-Newton model: a twentieth of the batch, one Krylov iteration.
DEMO_MODEL = MappingProxyType(dict(hessian_sample=0.05, krylov_limit=1))
#: The sample's growth per accepted iterate in the run to a minimum.
GROWTH = 1.03
#: What the runs in a store were measured on, and how; a store of other problems or of
#: another protocol is not resumed.
PROBLEMS = {"protocol": "Adam first; the others stop at 1.05 x Adam's best loss or after the "
                        "wall time of Adam's best run; every optimizer on pdeopt's sweeps",
            "digits": "parabolic C=8 N=4 T=1 alpha=1e-3 beta=1e-2, shift coordinates, "
                      "initial scales 2.5 and 1",
            "regression": "parabolic C=4 N=4 T=1 alpha=1e-5 beta=1e-4, difference coordinates"}


#: The peers of the demo's trust region (issue 19): every other optimizer of the comparison.
PEERS = ("adam", "lbfgs", "tao_lmvm", "tao_ntr", "scipy_trust_krylov", "scipy_trust_ncg")


def pdeopt_runs(task_name, cfg, rows="all"):
    """The runs on a task after Adam and L-BFGS: ``(name, adapter, settings)``; with
    ``rows="peers"`` only the demo's trust region and its peers."""
    tr = dict(its=cfg["tr_its"])
    scipy = [(f"scipy_{m.replace('-', '_')}", run_scipy, dict(its=cfg["tao_its"], method=m))
             for m in SCIPY_METHODS]
    sampled = dict(tr, **DEMO_MODEL)
    demo = ("tr_newton_cg", run_trust_region, dict(sampled, preconditioner="lmvm"))
    peers = [*((f"tao_{tao_type}", run_tao, dict(its=cfg["tao_its"], tao_type=tao_type))
               for tao_type in ("ntr", "lmvm")), *scipy]
    if task_name == "regression":  # the surrogate demo's model, the whole batch's Gauss-Newton
        whole = ("tr_newton_cg_whole_batch", run_trust_region, dict(tr, preconditioner="none"))
        return [demo, whole, *(() if rows == "peers" else
                               [("tr_newton_cg_projected", run_trust_region,
                                 dict(tr, preconditioner="none", projected=True))]), *peers]
    before = ("tr_newton_cg_tenth_full_cg", run_trust_region,  # the demo's model until issue 19
              dict(tr, hessian_sample=0.1, preconditioner="lmvm"))
    if rows == "peers":
        return [demo, before, *peers]
    return [demo, before,
            ("tr_newton_cg_whole_batch", run_trust_region, dict(tr, preconditioner="lmvm")),
            *((f"tr_newton_cg_pc_{pc}", run_trust_region, dict(sampled, preconditioner=pc))
              for pc in ("none", "regularizer", "low_rank")),
            ("tr_newton_cg_projected", run_trust_region,
             dict(tr, preconditioner="lmvm", projected=True)),
            *peers]


def equal_work_runs(task_name, cfg):
    """The runs to a minimum at equal work (no target): the demo's trust region with a sample
    growing from ``growth_from`` accepted iterates on (the whole batch's Newton-CG once it is
    the whole batch), against SciPy's ``trust-krylov``; ``(name, adapter, settings)``."""
    work = dict(its=10**6, max_work=cfg["equal_work"])
    tr = (dict(preconditioner="none") if task_name == "regression" else
          dict(DEMO_MODEL, preconditioner="lmvm", growth=GROWTH,
               growth_from=cfg["growth_from"]))
    return [("tr_newton_cg_to_minimum", run_trust_region, dict(work, **tr)),
            ("scipy_trust_krylov_to_minimum", run_scipy, dict(work, method="trust-krylov"))]


def _best_loss(record):
    return min(c[1] for c in record["curve"])


def run_task(task_name, task, seed, cfg, store, accuracy=None, rows="all"):
    """B5's protocol on one task and seed; returns the records by optimizer name (prefixed
    by the task's name but for the digits).

    Adam runs first with every learning rate, on the torch twin; the best of them (the lowest
    loss) fixes the target, ``TARGET_FACTOR`` × its best loss, and the budget, its wall time.
    Then L-BFGS on the twin and the pdeopt solvers run until the target or the budget.
    ``accuracy(theta)``, if given, is stored with every run.
    """
    theta0 = task.initial_controls(seed)
    prefix = "" if task_name == "digits" else f"{task_name}_"

    def key(name, settings=None):
        """A run's key in the store; a pdeopt solver's carries its settings, so that a store
        written under other settings is not resumed for it."""
        base = f"{task_name}/{seed}/{name}"
        return base if settings is None else f"{base}/{json.dumps(settings, sort_keys=True)}"

    adam = [store.get(key(f"adam_{lr:g}"), run_adam, task, theta0, its=cfg["adam_its"], lr=lr,
                      accuracy=accuracy)
            for lr in LEARNING_RATES]
    if rows == "targets":
        return {}
    best = min(adam, key=_best_loss)
    stop = dict(target=TARGET_FACTOR * _best_loss(best), budget=best["curve"][-1][0])
    results = {f"{prefix}adam": best,
               f"{prefix}lbfgs": store.get(key("lbfgs"), run_lbfgs, task, theta0,
                                           its=cfg["lbfgs_its"], accuracy=accuracy, **stop)}
    for name, run, settings in pdeopt_runs(task_name, cfg, rows):
        results[prefix + name] = store.get(key(name, settings), run, task, theta0,
                                           accuracy=accuracy, **stop, **settings)
    unbounded = dict(target=-np.inf, budget=np.inf)
    for name, run, settings in equal_work_runs(task_name, cfg):
        results[prefix + name] = store.get(key(name, settings), run, task, theta0,
                                           accuracy=accuracy, **unbounded, **settings)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="full")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--task", choices=("digits", "regression", "both"), default="both")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the runs already in results/optimizers/runs-<size>.jsonl")
    parser.add_argument("--rows", choices=("all", "peers", "targets"), default="all",
                        help="peers: only the demo's trust region and its peers (the "
                             "comparison, to time in one sitting); targets: only Adam's runs, "
                             "which fix the targets and budgets (kept in the store)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parse_args(parser)
    comm = MPI.COMM_WORLD
    torch.set_num_threads(1)
    cfg = SIZES[args.size]
    out = results_dir("optimizers")
    store = RunStore(out / f"runs-{args.size}.jsonl", args.resume, comm, PROBLEMS)
    digits, regression = args.task in ("digits", "both"), args.task in ("regression", "both")
    runs, accuracy, baselines = [], {}, []
    for seed in args.seeds:
        if digits:
            task = DigitsTask(comm=comm, limit=cfg["limit"])
            results = run_task("digits", task, seed, cfg, store, accuracy=task.accuracy,
                               rows=args.rows)
            for name, r in results.items():
                accuracy.setdefault(name, []).append(r["test_accuracy"])
            runs += records(results, seed)
            baselines.append(task.logistic_accuracy())
        if regression:
            task = RegressionTask(cfg["regression_samples"], comm=comm)
            runs += records(run_task("regression", task, seed, cfg, store, rows=args.rows),
                            seed)
    if args.rows == "targets":
        if comm.rank == 0:
            print(f"Adam's runs are in {store.path}; run again with --resume for the rest.")
        return
    summary = summarise(runs, size=args.size, seeds=args.seeds, peers=PEERS,
                        accuracy=accuracy if digits else None, baselines=baselines,
                        regression=regression)
    write_json(out / "summary.json", summary, comm)
    if comm.rank == 0:
        (out / "table.md").write_text(table(summary))
        plot(runs, out / "loss.png")
        print(json.dumps(summary) if args.json else table(summary))
    comm.Barrier()


if __name__ == "__main__":
    main()
