"""The benchmark scripts run at their smallest size, write their results, and measure what
they say they measure."""

import argparse
import json
import math
import os
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from mpi4py import MPI

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def _script(name, tmp_path, *args, check=True):
    return subprocess.run([sys.executable, str(BENCHMARKS / name), *args], check=check,
                          capture_output=True, text=True,
                          env={**os.environ, "PDEOPT_RESULTS": str(tmp_path)})


@pytest.fixture
def benchmarks_on_path(monkeypatch):
    """The benchmarks' modules importable, as they are when a script runs."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))


def _store(path):
    """The runs of a ``RunStore`` file by key (the header left out)."""
    return {r["key"]: r for r in map(json.loads, path.read_text().splitlines()[1:])}


def test_derivative_cost_benchmark_writes_b1_b2_b4(tmp_path):
    _script("derivative_cost.py", tmp_path, "--size", "ci", "--repeat", "1", "--json")
    result = json.loads((tmp_path / "bench" / "derivative_cost_ci.json").read_text())
    # each quantity was timed (a smoke test of the schema), and a gradient, which contains a
    # taped forward sweep, costs more than the forward sweep alone
    assert all(t > 0 for t in result["median_seconds"].values())
    for key in ("taped_forward_over_forward", "hessian_action_over_gradient",
                "gauss_newton_action_over_gradient", "layer_over_torch_conv2d"):
        assert math.isfinite(result[key]) and result[key] > 0
    assert result["gradient_over_forward"] > 1


def test_roofline_benchmark_bounds_every_kernel_from_below(tmp_path):
    _script("roofline.py", tmp_path, "--sizes", "ci", "--repeat", "1", "--json")
    result = json.loads((tmp_path / "bench" / "roofline.json").read_text())
    machine = result["machine"]
    assert machine["triad_bandwidth_1"] > 1e8 and machine["dgemm_rate_1"] > 1e8
    ci = result["sizes"]["ci"]
    state = 8.0 * ci["n"] ** 2 * ci["batch"] * ci["channels"]
    operators = {ci[name]["bytes"] - blocks * state
                 for name, blocks in (("forward", 3), ("adjoint", 4), ("tlm_soa", 12))}
    assert len(operators) == 1 and operators.pop() > 0  # the same CSR arrays for each kernel
    for name in ("forward", "adjoint", "tlm_soa"):
        k = ci[name]
        # a lower bound: no kernel runs faster than the machine moves its bytes
        assert k["bound_seconds"] <= k["seconds"] and k["ratio"] >= 1.0
    kernels = ("forward", "adjoint", "tlm_soa")
    assert result["worst_ratio"] == max(ci[k]["ratio"] for k in kernels)


def _solver_run(store, name):
    """The one run of a pdeopt solver ``name`` in a store: its key carries its settings."""
    (run,) = [r for key, r in store.items() if key.startswith(name + "/{")]
    return run


def test_optimizers_benchmark_writes_b5(tmp_path):
    _script("optimizers.py", tmp_path, "--size", "ci", "--seeds", "0", "--json")
    out = tmp_path / "optimizers"
    summary = json.loads((out / "summary.json").read_text())
    # schema smoke checks: the summary has every figure and every run
    assert {"target_loss", "tr_newton_cg_over_adam", "tr_newton_cg_over_lbfgs",
            "tr_newton_cg_over_fastest_peer", "fastest_peer", "at_equal_work",
            "test_accuracy_mean", "baseline_logistic_accuracy_mean", "runs"} <= set(summary)
    names = [r["optimizer"] for r in summary["runs"]]
    peers = {"adam", "lbfgs", "tao_ntr", "tao_lmvm", "scipy_trust_krylov", "scipy_trust_ncg"}
    assert {"tr_newton_cg", "tr_newton_cg_projected", "tr_newton_cg_to_minimum",
            "scipy_trust_krylov_to_minimum", *peers, "regression_tr_newton_cg",
            "regression_tr_newton_cg_whole_batch", "regression_tr_newton_cg_projected",
            *(f"regression_{p}" for p in peers)} <= set(names)
    assert {"target_loss", "tr_newton_cg_over_adam", "tr_newton_cg_over_fastest_peer",
            "tr_newton_cg_projected_over_adam"} <= set(summary["regression"])
    assert set(summary["fastest_peer"]) <= peers | {None}
    for r in summary["runs"]:
        assert set(r) >= {"optimizer", "seed", "seconds_to_target", "iterations", "gradients",
                          "hessian_actions", "final_loss"}
    assert (out / "loss.png").stat().st_size > 0

    # the runs do what the protocol says: Adam's best learning rate descends, the trust
    # region's loss falls below its start, and no run does more iterations than the size allows
    store = _store(out / "runs-ci.jsonl")
    for task, adam in (("digits", "adam"), ("regression", "regression_adam")):
        (lr,) = [r["adam_learning_rate"] for r in summary["runs"] if r["optimizer"] == adam]
        curve = store[f"{task}/0/adam_{lr:g}"]["curve"]
        assert curve[-1][1] < curve[0][1], (task, lr)
        curve = _solver_run(store, f"{task}/0/tr_newton_cg")["curve"]
        assert curve[-1][1] < curve[0][1], task
        # from the same network controls, the optimal readout weights do no worse than the
        # initial ones: J_p(theta_0) <= J(theta_0, w_0)
        assert _solver_run(store, f"{task}/0/tr_newton_cg_projected")["curve"][0][1] <= \
            curve[0][1], task
    for r in summary["runs"]:
        if r["optimizer"].endswith("adam"):
            assert r["iterations"] == 8
        elif r["optimizer"].endswith("_to_minimum"):  # no target: they stop at ci's work, 12
            assert r["reason"] == "DIVERGED_MAXWORK" and r["work"] >= 12, r
        else:  # the trust regions, TAO, SciPy and L-BFGS: at most ci's 3 iterations
            assert r["iterations"] <= 3, r["optimizer"]
        assert math.isfinite(r["final_loss"]) and r["work"] > 0
        assert r["final_gradient_norm"] > 0
    # the table has one row per run, in order, with its stop reason
    lines = (out / "table.md").read_text().splitlines()
    assert lines[0].startswith("B5")
    rows = [line.split(" | ") for line in lines if line.startswith("| ")][1:]
    assert [(row[0][2:], int(row[1]), row[8]) for row in rows] == \
        [(r["optimizer"], r["seed"], r["reason"]) for r in summary["runs"]]

    # --resume takes every finished run from runs-ci.jsonl: the same summary, nothing rerun
    # (a rerun would measure other times)
    _script("optimizers.py", tmp_path, "--size", "ci", "--seeds", "0", "--resume")
    assert json.loads((out / "summary.json").read_text()) == summary
    # a store of runs on other problems is not resumed
    store = out / "runs-ci.jsonl"
    store.write_text(store.read_text().replace("shift coordinates", "difference coordinates", 1))
    run = _script("optimizers.py", tmp_path, "--size", "ci", "--seeds", "0", "--resume",
                  check=False)
    assert run.returncode != 0 and "holds runs of other problems" in run.stderr


@pytest.mark.parametrize("solver", ["trust_region", "tao"])
def test_digits_study_runs_a_configuration(tmp_path, solver):
    _script("digits_study.py", tmp_path, "--limit", "100", "iterations=2", "T=1",
            "projection=1", f"solver={solver}")
    (run,) = [json.loads(line) for line in
              (tmp_path / "digits_study" / "runs.jsonl").read_text().splitlines()]
    assert run["T"] == 1.0 and run["projection"] == 1 and run["iterations"] == 2
    assert run["solver"] == solver
    # the accuracies recorded at each iterate (TAO reports its start too) are those of the
    # controls the solver returns, the classifier's weights projected out alike
    assert 1 <= len(run["trajectory"]) <= 3
    assert run["trajectory"][-1][1:] == [run["validation_accuracy"], run["test_accuracy"]]


def test_digits_study_trains_a_verlet_network(tmp_path):
    """``scheme=verlet`` switches the demo's network to the Hamiltonian layers (two control sets
    per layer): it trains to a finite loss, and the accuracies are those of its controls."""
    _script("digits_study.py", tmp_path, "--limit", "100", "iterations=2", "scheme=verlet")
    (run,) = [json.loads(line) for line in
              (tmp_path / "digits_study" / "runs.jsonl").read_text().splitlines()]
    assert run["scheme"] == "verlet" and np.isfinite(run["train_loss"])
    assert len(run["trajectory"]) == 2
    assert run["trajectory"][-1][1:] == [run["validation_accuracy"], run["test_accuracy"]]
    assert run["validation_accuracy"] > 0.3  # ten classes: far above chance after two steps


def test_digits_study_votes(benchmarks_on_path):
    """Starts that differ only in the seed vote with their averaged class probabilities."""
    study = runpy.run_path(str(BENCHMARKS / "digits_study.py"))
    labels = SimpleNamespace(labels=np.array([0, 1]))
    data = {"validation": labels, "test": labels}
    a, b = ([[0.9, 0.1], [0.6, 0.4]], [[0.45, 0.55], [0.1, 0.9]])  # each right once
    runs = [dict(study["DEMO"], seed=seed, validation_probabilities=p, test_probabilities=p)
            for seed, p in ((0, a), (1, b))]
    runs.append(dict(runs[0], T=2.0))  # another configuration, alone: no vote
    runs.append({k: v for k, v in runs[0].items() if "probabilities" not in k})  # no vote
    (line,) = study["votes"](runs, data)
    vote = json.loads(line)
    assert vote["seeds"] == [0, 1] and vote["vote"]["T"] == 1.0
    assert vote["validation_accuracy"] == vote["test_accuracy"] == 1.0


def test_parse_args_hands_the_rest_to_petsc(benchmarks_on_path):
    from petsc4py import PETSc
    from _runs import parse_args

    options = PETSc.Options()
    options.insertString("--bench_size S")  # as PETSc holds the script's own options
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench_size")
    try:
        args = parse_args(parser, ["--bench_size", "S", "-bench_ksp_type", "gltr"])
        assert args.bench_size == "S"
        assert options.getString("bench_ksp_type") == "gltr"
        assert not options.hasName("--bench_size")
    finally:
        options.delValue("-bench_ksp_type")


@pytest.mark.parallel(nprocs=2)
def test_parallel_benchmark_writes_b7(tmp_path_factory, monkeypatch, benchmarks_on_path):
    comm = MPI.COMM_WORLD
    tmp = Path(comm.bcast(str(tmp_path_factory.mktemp("b7")) if comm.rank == 0 else None))
    monkeypatch.setenv("PDEOPT_RESULTS", str(tmp))
    monkeypatch.setattr(sys, "argv", ["parallel.py", "--size", "ci", "--repeat", "1"])
    runpy.run_path(str(BENCHMARKS / "parallel.py"), run_name="__main__")
    summary = json.loads((tmp / "parallel" / "summary.json").read_text())
    # measured, on both ranks: positive, finite speed-ups, bandwidth gain and efficiency
    for k in ("speedup_spatial", "speedup_ensemble", "bandwidth_gain", "efficiency"):
        assert math.isfinite(summary[k]) and summary[k] > 0, k
    assert all(s > 0 for s in summary["median_seconds"].values())


def test_reproduce_analysis_writes_its_summary_and_resumes(tmp_path):
    """``benchmarks/analysis.py --size ci``: every scheme's observed order in the summary, the
    plot written; a second run with ``--resume`` re-uses every stored piece; a damaged piece
    is measured again."""
    args = ("--size", "ci", "--transport-size", "skip")
    _script("analysis.py", tmp_path, *args)
    out = tmp_path / "analysis"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["observed_order"]) == {"forward_euler", "parabolic", "imex", "leapfrog",
                                              "verlet"}
    assert all(np.isfinite(p) for p in summary["observed_order"].values())
    assert (out / "orders.png").stat().st_size > 0
    (out / "pieces" / "verlet-smooth.json").write_text("{not json")
    again = _script("analysis.py", tmp_path, *args, "--resume").stdout
    assert again.count(": stored") == 6 and "verlet-smooth: " in again
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["observed_order"] == pytest.approx(summary["observed_order"], rel=1e-12)


def test_reproduce_calibration_at_ci_size_resumes_from_its_database(tmp_path):
    """``benchmarks/calibration.py --size ci``: the grid and every backend evaluated, B8 per
    backend in the summary; a second run finds every evaluation in the SQLite database and
    trains nothing (no row added)."""
    import sqlite3
    _script("calibration.py", tmp_path, "--size", "ci")
    out = tmp_path / "calibration"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["grid_points"] == 8 and math.isfinite(summary["grid_best"])
    assert set(summary["evaluations_to_within_1pct"]) == {"nomad", "optuna", "bobyqa", "random"}
    assert all(n == 5 for n in summary["evaluations"].values())
    assert (out / "convergence.png").stat().st_size > 0

    def rows():
        with sqlite3.connect(out / "calibration.sqlite") as db:
            return db.execute("SELECT COUNT(*) FROM pdeopt_evaluations").fetchone()[0]
    before = rows()
    again = _script("calibration.py", tmp_path, "--size", "ci").stdout
    assert rows() == before and "0 of them run" in again
    assert json.loads((out / "summary.json").read_text())["best_found"] == summary["best_found"]


def test_large_calibration_retrains_the_best_against_the_demo(tmp_path):
    """``--study large --size ci``: NOMAD on seven variables (resolution among them) from the
    demo's configuration, then both configurations retrained: ``large.json``."""
    _script("calibration.py", tmp_path, "--size", "ci", "--study", "large")
    large = json.loads((tmp_path / "calibration" / "large.json").read_text())
    assert large["evaluations"] == 5 and len(large["best_config"]) == 7
    for run in large["retrained"].values():
        assert 0.1 < run["test_accuracy"] <= 1.0 and run["iterations"] == 4
    assert large["retrained"]["demo"]["config"]["resolution"] == 8
