"""B5: time to a target training loss, trust-region Newton-CG against Adam and L-BFGS.

    python benchmarks/optimizers.py [--size full|small|ci] [--seeds 0 1 2] [--json]

DESIGN.md §7, B5: wall time to a target training loss for TR-Newton-CG in the demo's default
configuration (Gauss-Newton model on a 10 % subsample of the batch, drawn afresh at every
accepted iterate; L-BFGS preconditioner), divided by that of the best-tuned
Adam (learning rates 1e-3 … 1e-1, 2000 full-batch iterations), both float64 on the same
model, data and initial point; target = 1.05 × the best loss Adam reaches; median over the
seeds (each seed draws the initial controls); timing from the first objective evaluation.

The protocol, per seed and task: Adam runs first, with every learning rate, and fixes the
target. Every other optimizer then runs until it reaches the target (``fmin`` of the trust
region, ``-tao_fmin``) or has used the wall time of Adam's best run (its budget; also an
iteration limit), so its iterations, work and test accuracy are those of reaching the
target, and the time of a run that cannot reach it is bounded (at the full size the
iteration limits are high enough that the wall time governs).
Also run, for the table: TR-Newton-CG with each preconditioner, with the Gauss-Newton model
of the whole batch, and on the projected functional (variable projection of the
classifier's weights, whole batch), TAO ``ntr`` and ``lmvm``, and L-BFGS on the torch twin.
The same comparison runs on the regression task of ``demos/surrogate`` (Firedrake-generated
diffusion-reaction data, probe readout): TR-Newton-CG (Gauss-Newton of the whole batch, as in
that demo) with and without variable projection against Adam and L-BFGS, its target 1.05 ×
the best loss Adam reaches there. Adam and L-BFGS run on the torch twin (the same discrete
network in torch, one thread). Work is counted in forward+adjoint equivalents: a gradient is
2, a Hessian or Gauss-Newton action 2 (a tangent-linear and a reverse sweep), an objective
alone 1; a sweep over a subsample of the batch counts its fraction.

``--task digits|regression|both`` picks the tasks (default both). Every finished run is kept
in ``results/optimizers/runs-<size>.jsonl``; ``--resume`` reuses them, so a killed full-size
run continues where it stopped. ``--size full`` is B5 as defined (all 1078 training digits;
Adam's 10 000 torch-twin gradients per seed, ≈ 0.5 s each, dominate: about two hours per
seed on one core); ``small`` uses 180 training digits and 300 Adam iterations per learning
rate, ``ci`` a few iterations for the tests.

Writes results/optimizers/summary.json, table.md and loss.png (rank 0). The tasks are
``tasks.py``'s, the optimizers run through ``adapters.py``, the summary is ``summary.py``'s.
"""

import argparse
import json

import torch
from mpi4py import MPI

from pdeopt.parallel import results_dir, write_json

from _runs import RunStore, parse_args
from adapters import run_adam, run_lbfgs, run_tao, run_trust_region
from summary import TARGET_FACTOR, plot, records, summarise, table
from tasks import DigitsTask, RegressionTask

SIZES = {
    "full": dict(limit=None, adam_its=2000, tr_its=10_000, tao_its=10_000, lbfgs_its=10_000,
                 regression_samples=200),
    "small": dict(limit=300, adam_its=300, tr_its=150, tao_its=150, lbfgs_its=150,
                  regression_samples=100),
    "ci": dict(limit=100, adam_its=8, tr_its=3, tao_its=3, lbfgs_its=3, regression_samples=20),
}
LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
HESSIAN_SAMPLE = 0.1  # the demo's Gauss-Newton model: a tenth of the batch
#: What the runs in a store were measured on, and how; a store of other problems or of
#: another protocol is not resumed.
PROBLEMS = {"protocol": "Adam first; the others stop at 1.05 x Adam's best loss or after the "
                        "wall time of Adam's best run",
            "digits": "parabolic C=8 N=4 T=1 alpha=1e-3 beta=1e-2, shift coordinates, "
                      "initial scales 2.5 and 1",
            "regression": "parabolic C=4 N=4 T=1 alpha=1e-5 beta=1e-4, difference coordinates"}


def pdeopt_runs(task_name, cfg):
    """The runs of the pdeopt solvers on a task, after Adam and L-BFGS: ``(name, adapter,
    settings)``."""
    tr = dict(its=cfg["tr_its"])
    if task_name == "regression":  # the surrogate demo's: the whole batch's Gauss-Newton
        return [("tr_newton_cg", run_trust_region, dict(tr, preconditioner="none")),
                ("tr_newton_cg_projected", run_trust_region,
                 dict(tr, preconditioner="none", projected=True))]
    sampled = dict(tr, hessian_sample=HESSIAN_SAMPLE)
    return [("tr_newton_cg", run_trust_region, dict(sampled, preconditioner="lmvm")),
            ("tr_newton_cg_whole_batch", run_trust_region, dict(tr, preconditioner="lmvm")),
            *((f"tr_newton_cg_pc_{pc}", run_trust_region, dict(sampled, preconditioner=pc))
              for pc in ("none", "regularizer", "low_rank")),
            ("tr_newton_cg_projected", run_trust_region,
             dict(tr, preconditioner="lmvm", projected=True)),
            *((f"tao_{tao_type}", run_tao, dict(its=cfg["tao_its"], tao_type=tao_type))
              for tao_type in ("ntr", "lmvm"))]


def _best_loss(record):
    return min(c[1] for c in record["curve"])


def run_task(task_name, task, seed, cfg, store, accuracy=None):
    """B5's protocol on one task and seed; returns the records by optimizer name (prefixed
    by the task's name but for the digits).

    Adam runs first with every learning rate, on the torch twin; the best of them (the lowest
    loss) fixes the target, ``TARGET_FACTOR`` × its best loss, and the budget, its wall time.
    Then L-BFGS on the twin and the pdeopt solvers run until the target or the budget.
    ``accuracy(theta)``, if given, is stored with every run.
    """
    theta0 = task.initial_controls(seed)
    loss = task.torch_loss()
    prefix = "" if task_name == "digits" else f"{task_name}_"

    def key(name):
        return f"{task_name}/{seed}/{name}"

    adam = [store.get(key(f"adam_{lr:g}"), run_adam, loss, theta0, its=cfg["adam_its"], lr=lr,
                      accuracy=accuracy)
            for lr in LEARNING_RATES]
    best = min(adam, key=_best_loss)
    stop = dict(target=TARGET_FACTOR * _best_loss(best), budget=best["curve"][-1][0])
    results = {f"{prefix}adam": best,
               f"{prefix}lbfgs": store.get(key("lbfgs"), run_lbfgs, loss, theta0,
                                           its=cfg["lbfgs_its"], accuracy=accuracy, **stop)}
    for name, run, settings in pdeopt_runs(task_name, cfg):
        results[prefix + name] = store.get(key(name), run, task, theta0, accuracy=accuracy,
                                           **stop, **settings)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="full")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--task", choices=("digits", "regression", "both"), default="both")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the runs already in results/optimizers/runs-<size>.jsonl")
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
            results = run_task("digits", task, seed, cfg, store, accuracy=task.accuracy)
            for name, r in results.items():
                accuracy.setdefault(name, []).append(r["test_accuracy"])
            runs += records(results, seed)
            baselines.append(task.logistic_accuracy())
        if regression:
            task = RegressionTask(cfg["regression_samples"], comm=comm)
            runs += records(run_task("regression", task, seed, cfg, store), seed)
    summary = summarise(runs, size=args.size, seeds=args.seeds,
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
