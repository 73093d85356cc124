"""B5's summary of the runs of ``benchmarks/optimizers.py``: the ratios, the table, the plot.

Needs only NumPy (and matplotlib for the plot), so that ``benchmarks/report.py`` can render a
stored summary without PETSc.
"""

import numpy as np

__all__ = ["TARGET_FACTOR", "seconds_to", "records", "summarise", "table", "plot"]

#: The target loss of every run: this factor times the best loss Adam reaches.
TARGET_FACTOR = 1.05


def seconds_to(curve, target):
    """First time a run's loss is at most ``target`` (``None`` if never); ``curve`` holds
    ``(seconds, loss, work)`` in the order they were measured."""
    for seconds, loss, _ in curve:
        if loss <= target:
            return seconds
    return None


def records(results, seed):
    """One row per run of ``results`` (name → run record of one seed), without the theta:
    the target (``TARGET_FACTOR`` × the best loss of the run whose name ends in ``adam``), the
    seconds to it and the run's counts."""
    if not results:
        return []
    adam = next(r for name, r in results.items() if name.endswith("adam"))
    target = TARGET_FACTOR * min(c[1] for c in adam["curve"])
    return [{"optimizer": name, "seed": seed, "target_loss": target,
             "seconds_to_target": seconds_to(r["curve"], target),
             "iterations": int(r["iterations"]), "gradients": int(r["gradients"]),
             "hessian_actions": int(r["hessian_actions"]),
             "final_loss": float(r["curve"][-1][1]), "work": int(round(r["work"])),
             "final_gradient_norm": r.get("gradient_norm"),
             "reason": r["reason"], "adam_learning_rate": r.get("learning_rate"),
             "curve": r["curve"]}
            for name, r in results.items()]


def _median_ratio(runs, seeds, name, other):
    """Median over ``seeds`` of ``name``'s seconds to the target over ``other``'s
    (``inf`` where ``name`` misses it, ``nan`` where only ``other`` does)."""
    values = []
    for seed in seeds:
        t = {r["optimizer"]: r["seconds_to_target"] for r in runs if r["seed"] == seed}
        values.append(np.inf if t[name] is None else
                      (np.nan if t[other] is None else t[name] / t[other]))
    return float(np.median(values))


def _over_fastest_peer(runs, seeds, name, peers):
    """Median over ``seeds`` of ``name``'s seconds to the target over the fastest of ``peers``
    (those that ran) on that seed, and the fastest peer of each seed."""
    values, fastest = [], []
    for seed in seeds:
        t = {r["optimizer"]: r["seconds_to_target"] for r in runs if r["seed"] == seed}
        reached = {p: t[p] for p in peers if t.get(p) is not None}
        best = min(reached, key=reached.get) if reached else None
        fastest.append(best)
        values.append(np.inf if t[name] is None else
                      (np.nan if best is None else t[name] / reached[best]))
    return float(np.median(values)), fastest


def _median_target(runs, adam):
    return float(np.median([r["target_loss"] for r in runs if r["optimizer"] == adam]))


def summarise(runs, *, size, seeds, peers, accuracy=None, baselines=None, regression=False):
    """The B5 summary of ``runs`` (the rows of :func:`records`).

    ``accuracy`` (optimizer → test accuracy of each seed) and ``baselines`` (the logistic
    regression's test accuracy of each seed) are the digits task's, ``None`` if it did not
    run; ``regression`` says whether the regression task ran; ``peers`` names the optimizers
    the demo's trust region is compared with (without the regression task's prefix).
    """
    summary = {"size": size, "seeds": seeds}
    names = {r["optimizer"] for r in runs}

    def ratios(prefix):
        ratio, fastest = _over_fastest_peer(runs, seeds, f"{prefix}tr_newton_cg",
                                            [prefix + p for p in peers])
        out = {"target_loss": _median_target(runs, f"{prefix}adam"),
               "tr_newton_cg_over_adam": _median_ratio(runs, seeds, f"{prefix}tr_newton_cg",
                                                       f"{prefix}adam"),
               "tr_newton_cg_over_fastest_peer": ratio, "fastest_peer": fastest}
        at_equal_work = {}
        for name in ("tr_newton_cg_to_minimum", "scipy_trust_krylov_to_minimum"):
            rows = [r for r in runs if r["optimizer"] == prefix + name]
            if rows:
                at_equal_work[name] = {
                    "final_loss": [r["final_loss"] for r in rows],
                    "final_gradient_norm": [r["final_gradient_norm"] for r in rows],
                    "work": [r["work"] for r in rows], "hessian_actions":
                    [r["hessian_actions"] for r in rows]}
        if at_equal_work:
            out["at_equal_work"] = at_equal_work
        if f"{prefix}tr_newton_cg_projected" in names:
            out["tr_newton_cg_projected_over_adam"] = _median_ratio(
                runs, seeds, f"{prefix}tr_newton_cg_projected", f"{prefix}adam")
        return out

    if accuracy is not None:
        summary.update({
            **ratios(""),
            "tr_newton_cg_over_lbfgs": _median_ratio(runs, seeds, "tr_newton_cg", "lbfgs"),
            "test_accuracy_mean": {k: float(np.mean(v)) for k, v in accuracy.items()},
            "baseline_logistic_accuracy_mean": float(np.mean(baselines))})
    if regression:
        summary["regression"] = ratios("regression_")
    summary["runs"] = [{k: v for k, v in r.items() if k != "curve"} for r in runs]
    return summary


def table(summary):
    """The headline ratios and a markdown table of every run in ``summary``."""
    lines = []
    if "tr_newton_cg_over_adam" in summary:
        lines.append(f"B5 = TR-Newton-CG / Adam: {summary['tr_newton_cg_over_adam']:.3f} "
                     f"(target loss {summary['target_loss']:.4g}); TR / L-BFGS: "
                     f"{summary['tr_newton_cg_over_lbfgs']:.3f}; TR / the fastest peer: "
                     f"{summary['tr_newton_cg_over_fastest_peer']:.3f} "
                     f"({', '.join(map(str, summary['fastest_peer']))})")
    if "regression" in summary:
        r = summary["regression"]
        projected = r.get("tr_newton_cg_projected_over_adam")
        lines.append(f"regression task: TR-Newton-CG / Adam {r['tr_newton_cg_over_adam']:.3f}"
                     + ("" if projected is None else
                        f", with variable projection {projected:.3f}")
                     + f"; TR / the fastest peer {r['tr_newton_cg_over_fastest_peer']:.3f} "
                     f"({', '.join(map(str, r['fastest_peer']))}) "
                     f"(target loss {r['target_loss']:.4g})")
    lines += ["", "| optimizer | seed | s to target | iterations | gradients | Hessian actions | "
              "work | final loss | stop | test accuracy | final gradient norm |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    acc = summary.get("test_accuracy_mean", {})
    for r in summary["runs"]:
        s = "—" if r["seconds_to_target"] is None else f"{r['seconds_to_target']:.2f}"
        a = f"{acc[r['optimizer']]:.4f} (mean)" if r["optimizer"] in acc else "—"
        lines.append(f"| {r['optimizer']} | {r['seed']} | {s} | {r['iterations']} | "
                     f"{r['gradients']} | {r['hessian_actions']} | {r['work']} | "
                     f"{r['final_loss']:.4g} | {r['reason']} | {a} | {_g(r)} |")
    if "baseline_logistic_accuracy_mean" in summary:
        lines.append(f"\nlogistic regression on the pixels: "
                     f"{summary['baseline_logistic_accuracy_mean']:.4f}")
    return "\n".join(lines) + "\n"


def _g(row):
    g = row.get("final_gradient_norm")
    return "—" if g is None else f"{g:.3g}"


def plot(runs, path):
    """Loss against wall time and against work of every run of the first seed, per task."""
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
