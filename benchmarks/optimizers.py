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

Writes results/optimizers/summary.json, table.md and loss.png (rank 0).
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from mpi4py import MPI

import pdeopt
from petsc4py import PETSc
from pdeopt.model.torch_twin import TorchTwin
from pdeopt.solvers.preconditioners import LMVMPC, LowRankPC, RegularizerPC

SIZES = {
    "full": dict(limit=None, adam_its=2000, tr_its=10_000, tao_its=10_000, lbfgs_its=10_000,
                 regression_samples=200),
    "small": dict(limit=300, adam_its=300, tr_its=150, tao_its=150, lbfgs_its=150,
                  regression_samples=100),
    "ci": dict(limit=100, adam_its=8, tr_its=3, tao_its=3, lbfgs_its=3, regression_samples=20),
}
LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
C, N, T, ALPHA, BETA = 8, 4, 1.0, 1e-3, 1e-2  # the demo's network and regulariser
HESSIAN_SAMPLE = 0.1  # the demo's Gauss-Newton model: a tenth of the batch
#: What the runs in a store were measured on, and how; a store of other problems or of
#: another protocol is not resumed.
PROBLEMS = {"protocol": "Adam first; the others stop at 1.05 x Adam's best loss or after the "
                        "wall time of Adam's best run",
            "digits": "parabolic C=8 N=4 T=1 alpha=1e-3 beta=1e-2, shift coordinates, "
                      "initial scales 2.5 and 1",
            "regression": "parabolic C=4 N=4 T=1 alpha=1e-5 beta=1e-4, difference coordinates"}


class Problem:
    """The demo's training problem for one seed, in pdeopt and in torch."""

    def __init__(self, size, seed, comm):
        grid = pdeopt.PixelGrid(8, comm=comm)
        data = pdeopt.load_digits(grid, seed=0, limit=SIZES[size]["limit"])
        self.train, self.test = data["train"], data["test"]
        ops = pdeopt.assemble_operators(grid, basis=tuple(pdeopt.GRID_SHIFTS))
        scheme = pdeopt.ParabolicScheme(ops, pdeopt.Tanh(), step=T / N)
        self.model = pdeopt.Model(pdeopt.Network(scheme, channels=C, depth=N),
                                  pdeopt.PooledClassifier(grid, channels=C, classes=10))
        self.regularizer = pdeopt.Regularizer(self.model.layout, alpha=ALPHA, beta=BETA,
                                              step=T / N)
        self.theta0 = self.model.initial_controls(seed=seed, scale=2.5, readout_scale=1.0)
        self.twin = TorchTwin(self.model, grid, self.regularizer)
        self.x_torch = self.twin.images(self.train.x)
        self.y_torch = torch.tensor(self.train.labels)

    def reduced_functional(self):
        return pdeopt.ReducedFunctional(self.model, self.train.x, self.train.labels,
                                        self.regularizer, theta=self.theta0)

    def accuracy(self, theta):
        return self.model.accuracy(theta, self.test.x, self.test.labels)


class Regression:
    """The surrogate task of ``demos/surrogate`` for one seed, in pdeopt and in torch."""

    C, N, T = 4, 4, 1.0

    def __init__(self, size, seed, comm):
        grid = pdeopt.PixelGrid(12, comm=comm)
        probes = [(iy, ix) for iy in (2, 6, 9) for ix in (2, 6, 9)]
        self.train = pdeopt.diffusion_reaction_data(grid, SIZES[size]["regression_samples"],
                                                    probes, seed=0, diffusivity=0.05,
                                                    reaction=1.0)
        ops = pdeopt.assemble_operators(grid)
        scheme = pdeopt.ParabolicScheme(ops, pdeopt.Tanh(), step=self.T / self.N)
        self.model = pdeopt.Model(pdeopt.Network(scheme, channels=self.C, depth=self.N),
                                  pdeopt.ProbeRegression(grid, self.C, probes, len(probes)))
        self.regularizer = pdeopt.Regularizer(self.model.layout, alpha=1e-5, beta=1e-4,
                                              step=self.T / self.N)
        self.theta0 = self.model.initial_controls(seed=seed)
        self.twin = TorchTwin(self.model, grid, self.regularizer)
        self.x_torch = self.twin.images(self.train.x)
        self.y_torch = torch.tensor(self.train.targets)

    def reduced_functional(self):
        return pdeopt.ReducedFunctional(self.model, self.train.x, self.train.targets,
                                        self.regularizer, theta=self.theta0)


def _work(counts):
    """Forward+adjoint equivalents of a reduced functional's or a solver's counts."""
    if "work" in counts:  # the trust region's, a subsample's sweeps at their fraction
        return counts["work"]
    actions = counts.get("hessian_actions",
                         counts.get("soa", 0) + counts.get("gauss_newton", 0))
    return counts["forward"] + counts["adjoint"] + 2 * actions


def run_trust_region(problem, its, preconditioner, target, budget, projected=False,
                     hessian_sample=1.0):
    t0 = time.perf_counter()
    Jhat = problem.reduced_functional()  # its taped forward is the first evaluation
    if projected:
        Jhat = pdeopt.ProjectedReducedFunctional(Jhat)
    setup = time.perf_counter() - t0
    pc = {"none": None, "regularizer": RegularizerPC(problem.regularizer), "lmvm": LMVMPC(),
          "low_rank": LowRankPC(problem.regularizer, rank=10, oversampling=5,
                                rebuild_every=5)}[preconditioner]
    solver = pdeopt.TrustRegionNewtonCG(Jhat, {"max_it": its, "hessian": "gauss_newton",
                                               "hessian_sample": hessian_sample, "fmin": target,
                                               "max_seconds": max(budget - setup, 1e-9)},
                                        preconditioner=pc, solver_parameters={"ksp_max_it": 30},
                                        monitor=False)
    # the solver counts from its start; the constructor's taped forward comes before
    result = solver.solve(problem.theta0[:Jhat.size])
    record = _pdeopt_run(Jhat, setup, result, offset=1, reason=result.reason.name)
    if projected:
        record["theta"] = Jhat.full(result.theta)
    return record


def run_tao(problem, its, tao_type, target, budget):
    t0 = time.perf_counter()
    Jhat = problem.reduced_functional()
    setup = time.perf_counter() - t0

    def out_of_time(*_):
        if time.perf_counter() - t0 >= budget:
            solver.tao.setConvergedReason(PETSc.TAO.ConvergedReason.CONVERGED_USER)

    solver = pdeopt.TAOSolver(Jhat, {"tao_type": tao_type, "tao_max_it": its, "tao_gatol": 0.0,
                                     "tao_fmin": target},
                              options_prefix=f"bench_{tao_type}_", monitor=False,
                              callback=out_of_time)
    result = solver.solve()
    reason = "DIVERGED_MAXTIME" if result.reason == "CONVERGED_USER" else result.reason
    return _pdeopt_run(Jhat, setup, result, offset=0, reason=reason)  # TAO records Jhat's counts


def _pdeopt_run(Jhat, setup, result, offset, reason):
    """A run's record from a pdeopt solver's history (``seconds`` from the solve's start)."""
    curve = [(setup + h["seconds"], h["objective"], offset + _work(h["counts"]))
             for h in result.history]
    c = getattr(result, "counts", None) or Jhat.counts  # the trust region counts its samples'
    return {"theta": result.theta, "curve": curve, "iterations": result.iterations,
            "gradients": Jhat.counts["adjoint"],
            "hessian_actions": c.get("hessian_actions", c.get("soa", 0) + c.get("gauss_newton", 0)),
            "work": offset + _work(c), "reason": reason}


def run_adam(problem, its, lr):
    t = torch.tensor(problem.theta0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([t], lr=lr)
    curve, t0 = [], time.perf_counter()
    for i in range(its):
        opt.zero_grad()
        J = problem.twin.loss(t, problem.x_torch, problem.y_torch)
        curve.append((time.perf_counter() - t0, float(J.detach()), 2 * i + 1))
        J.backward()
        opt.step()
    with torch.no_grad():
        curve.append((time.perf_counter() - t0,
                      float(problem.twin.loss(t, problem.x_torch, problem.y_torch)), 2 * its + 1))
    return {"theta": t.detach().numpy().copy(), "curve": curve, "iterations": its,
            "gradients": its, "hessian_actions": 0, "work": 2 * its + 1,
            "reason": "DIVERGED_MAXITS"}


class _Stop(Exception):
    """Raised in torch L-BFGS's closure, which has no other way out, with the reason."""


def run_lbfgs(problem, its, target, budget):
    t = torch.tensor(problem.theta0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([t], lr=1.0, max_iter=its, history_size=10,
                            line_search_fn="strong_wolfe", tolerance_grad=0.0,
                            tolerance_change=0.0)
    curve, evals, t0 = [], [0], time.perf_counter()
    best = [None, np.inf]  # the point of the lowest loss evaluated, and that loss

    def closure():
        opt.zero_grad()
        J = problem.twin.loss(t, problem.x_torch, problem.y_torch)
        J.backward()
        evals[0] += 1
        seconds, loss = time.perf_counter() - t0, float(J.detach())
        curve.append((seconds, loss, 2 * evals[0]))
        if loss < best[1]:
            best[:] = t.detach().numpy().copy(), loss
        if loss <= target:
            raise _Stop("CONVERGED_FMIN")
        if seconds >= budget:
            raise _Stop("DIVERGED_MAXTIME")
        return J

    try:
        opt.step(closure)
        reason = "DIVERGED_MAXITS"
    except _Stop as stop:
        reason = str(stop)
    return {"theta": best[0], "curve": curve,
            "iterations": opt.state[opt._params[0]].get("n_iter", 0), "gradients": evals[0],
            "hessian_actions": 0, "work": 2 * evals[0], "reason": reason}


def seconds_to(curve, target):
    """First time the loss is at most ``target`` (None if never)."""
    for seconds, loss, _ in curve:
        if loss <= target:
            return seconds
    return None


class RunStore:
    """Finished runs, one JSON line each in ``runs-<size>.jsonl``, so that a long benchmark
    killed part-way resumes (``--resume``) without redoing them. A line is written whole and
    flushed to disk when its run ends; a truncated last line is ignored on reading. The first
    line names the problems, and a store of other problems is refused."""

    def __init__(self, path, resume, comm, problems):
        self.path, self.comm, self.runs = Path(path), comm, {}
        header = {"problems": problems}
        if resume and self.path.exists():
            lines = self.path.read_text().splitlines() or ["{}"]
            try:
                stored = json.loads(lines[0])
            except json.JSONDecodeError:
                stored = None
            if stored != header:
                raise pdeopt.InputError(
                    f"{self.path} holds runs of other problems than these ({problems}): "
                    f"move it away, or run without --resume to start it again.")
            for line in lines[1:]:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.runs[record["key"]] = record
        elif comm.rank == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(header) + "\n")
        comm.Barrier()

    def get(self, key, run, accuracy=None):
        """The record of run ``key``, from the file or by calling ``run()``."""
        if key in self.runs:
            return self.runs[key]
        r = run()
        record = {"key": key, "curve": r["curve"], "iterations": int(r["iterations"]),
                  "gradients": int(r["gradients"]), "hessian_actions": int(r["hessian_actions"]),
                  "work": int(round(r["work"])), "reason": r["reason"],
                  "learning_rate": r.get("learning_rate"),
                  "test_accuracy": None if accuracy is None else accuracy(r["theta"])}
        if self.comm.rank == 0:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())
        self.runs[key] = record
        return record


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="full")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--task", choices=("digits", "regression", "both"), default="both")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the runs already in results/optimizers/runs-<size>.jsonl")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    for name in vars(args):  # argparse's options, not PETSc's: out of its unused-options report
        PETSc.Options().delValue(f"--{name}")
    comm = MPI.COMM_WORLD
    torch.set_num_threads(1)
    cfg = SIZES[args.size]
    out = Path(os.environ.get("PDEOPT_RESULTS", "results")) / "optimizers"
    store = RunStore(out / f"runs-{args.size}.jsonl", args.resume, comm, PROBLEMS)
    runs, accuracy, baselines = [], {}, []
    summary = {"size": args.size, "seeds": args.seeds}
    for seed in args.seeds:
        if args.task in ("digits", "both"):
            problem = Problem(args.size, seed, comm)

            def get(name, run):
                return store.get(f"digits/{seed}/{name}", run, problem.accuracy)

            results, stop = _first_order(problem, cfg, get)
            results["tr_newton_cg"] = get("tr_newton_cg", lambda: run_trust_region(
                problem, cfg["tr_its"], "lmvm", *stop, hessian_sample=HESSIAN_SAMPLE))
            results["tr_newton_cg_whole_batch"] = get("tr_newton_cg_whole_batch", lambda: (
                run_trust_region(problem, cfg["tr_its"], "lmvm", *stop)))
            for pc in ("none", "regularizer", "low_rank"):
                results[f"tr_newton_cg_pc_{pc}"] = get(f"tr_newton_cg_pc_{pc}", lambda: (
                    run_trust_region(problem, cfg["tr_its"], pc, *stop,
                                     hessian_sample=HESSIAN_SAMPLE)))
            results["tr_newton_cg_projected"] = get("tr_newton_cg_projected", lambda: (
                run_trust_region(problem, cfg["tr_its"], "lmvm", *stop, projected=True)))
            for tao_type in ("ntr", "lmvm"):
                results[f"tao_{tao_type}"] = get(f"tao_{tao_type}", lambda: (
                    run_tao(problem, cfg["tao_its"], tao_type, *stop)))
            for name, r in results.items():
                accuracy.setdefault(name, []).append(r["test_accuracy"])
            runs += _records(results, seed)
            baselines.append(_logistic_baseline(problem))
        if args.task in ("regression", "both"):
            problem = Regression(args.size, seed, comm)

            def get(name, run):
                return store.get(f"regression/{seed}/{name}", run)

            results, stop = _first_order(problem, cfg, get, prefix="regression_")
            for p in ("", "_projected"):
                results[f"regression_tr_newton_cg{p}"] = get(f"tr_newton_cg{p}", lambda: (
                    run_trust_region(problem, cfg["tr_its"], "none", *stop,
                                     projected=bool(p))))
            runs += _records(results, seed)

    def ratio(name, other):
        values = []
        for seed in args.seeds:
            t = {r["optimizer"]: r["seconds_to_target"] for r in runs if r["seed"] == seed}
            values.append(np.inf if t[name] is None else
                          (np.nan if t[other] is None else t[name] / t[other]))
        return float(np.median(values))

    def target(adam):
        return float(np.median([r["target_loss"] for r in runs if r["optimizer"] == adam]))

    if args.task in ("digits", "both"):
        summary.update({
            "target_loss": target("adam"),
            "tr_newton_cg_over_adam": ratio("tr_newton_cg", "adam"),
            "tr_newton_cg_over_lbfgs": ratio("tr_newton_cg", "lbfgs"),
            "test_accuracy_mean": {k: float(np.mean(v)) for k, v in accuracy.items()},
            "baseline_logistic_accuracy_mean": float(np.mean(baselines))})
    if args.task in ("regression", "both"):
        summary["regression"] = {
            "target_loss": target("regression_adam"),
            "tr_newton_cg_over_adam": ratio("regression_tr_newton_cg", "regression_adam"),
            "tr_newton_cg_projected_over_adam": ratio("regression_tr_newton_cg_projected",
                                                      "regression_adam")}
    summary["runs"] = [{k: v for k, v in r.items() if k != "curve"} for r in runs]
    if comm.rank == 0:
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        (out / "table.md").write_text(_table(summary))
        _plot(runs, out / "loss.png")
        print(json.dumps(summary) if args.json else _table(summary))
    comm.Barrier()


def _first_order(problem, cfg, get, prefix=""):
    """Adam with every learning rate, then L-BFGS, on the torch twin. Returns the results
    (Adam's best learning rate and L-BFGS) and ``(target, budget)``: 1.05 × the best loss
    Adam reached, and the wall time of that Adam run."""
    adam = {lr: get(f"adam_{lr:g}", lambda: dict(run_adam(problem, cfg["adam_its"], lr),
                                                  learning_rate=lr))
            for lr in LEARNING_RATES}
    best = adam[min(adam, key=lambda lr: min(c[1] for c in adam[lr]["curve"]))]
    stop = (1.05 * min(c[1] for c in best["curve"]), best["curve"][-1][0])
    return {f"{prefix}adam": best,
            f"{prefix}lbfgs": get("lbfgs", lambda: run_lbfgs(problem, cfg["lbfgs_its"], *stop))
            }, stop


def _records(results, seed):
    adam = next(r for name, r in results.items() if name.endswith("adam"))
    target = 1.05 * min(c[1] for c in adam["curve"])
    return [{"optimizer": name, "seed": seed, "target_loss": target,
             "seconds_to_target": seconds_to(r["curve"], target),
             "iterations": int(r["iterations"]), "gradients": int(r["gradients"]),
             "hessian_actions": int(r["hessian_actions"]),
             "final_loss": float(r["curve"][-1][1]), "work": int(round(r["work"])),
             "reason": r["reason"], "adam_learning_rate": r.get("learning_rate"),
             "curve": r["curve"]}
            for name, r in results.items()]


def _logistic_baseline(problem):
    from sklearn.linear_model import LogisticRegression
    train, test = problem.train, problem.test
    model = LogisticRegression(C=1.0, max_iter=5000).fit(train.images.reshape(len(train), -1),
                                                         train.labels)
    return float(model.score(test.images.reshape(len(test), -1), test.labels))


def _table(summary):
    lines = []
    if "tr_newton_cg_over_adam" in summary:
        lines.append(f"B5 = TR-Newton-CG / Adam: {summary['tr_newton_cg_over_adam']:.3f} "
                     f"(target loss {summary['target_loss']:.4g}); TR / L-BFGS: "
                     f"{summary['tr_newton_cg_over_lbfgs']:.3f}")
    if "regression" in summary:
        r = summary["regression"]
        lines.append(f"regression task: TR-Newton-CG / Adam {r['tr_newton_cg_over_adam']:.3f}, "
                     f"with variable projection {r['tr_newton_cg_projected_over_adam']:.3f} "
                     f"(target loss {r['target_loss']:.4g})")
    lines += ["", "| optimizer | seed | s to target | iterations | gradients | Hessian actions | "
              "work | final loss | stop | test accuracy |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    acc = summary.get("test_accuracy_mean", {})
    for r in summary["runs"]:
        s = "—" if r["seconds_to_target"] is None else f"{r['seconds_to_target']:.2f}"
        a = f"{acc[r['optimizer']]:.4f} (mean)" if r["optimizer"] in acc else "—"
        lines.append(f"| {r['optimizer']} | {r['seed']} | {s} | {r['iterations']} | "
                     f"{r['gradients']} | {r['hessian_actions']} | {r['work']} | "
                     f"{r['final_loss']:.4g} | {r['reason']} | {a} |")
    if "baseline_logistic_accuracy_mean" in summary:
        lines.append(f"\nlogistic regression on the pixels: "
                     f"{summary['baseline_logistic_accuracy_mean']:.4f}")
    return "\n".join(lines) + "\n"


def _plot(runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    seed = runs[0]["seed"]
    tasks = [t for t in ("digits", "regression")
             if any(r["optimizer"].startswith("regression_") == (t == "regression")
                    for r in runs)]
    fig, axes = plt.subplots(len(tasks), 2, figsize=(10, 4 * len(tasks)), squeeze=False)
    for ax, task in zip(axes, tasks):
        mine = [r for r in runs if r["seed"] == seed
                and r["optimizer"].startswith("regression_") == (task == "regression")]
        for r in mine:
            t, loss, work = np.array(r["curve"]).T
            ax[0].semilogy(t, loss, label=r["optimizer"])
            ax[1].semilogy(work, loss, label=r["optimizer"])
        ax[0].set(xlabel="wall time [s]", ylabel="training loss", title=f"{task}, seed {seed}")
        ax[1].set(xlabel="work [forward+adjoint equivalents]", title="against work")
        for a in ax:
            a.axhline(mine[0]["target_loss"], color="k", lw=0.5)
        ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
