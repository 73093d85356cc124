"""The benchmark scripts run at their smallest size and write their results."""

import json
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


def test_optimizers_benchmark_writes_b5(tmp_path):
    env = {"PDEOPT_RESULTS": str(tmp_path)}
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "optimizers.py"), "--size", "ci",
                    "--seeds", "0", "--json"], check=True, capture_output=True,
                   env={**os.environ, **env})
    out = tmp_path / "optimizers"
    summary = json.loads((out / "summary.json").read_text())
    assert {"target_loss", "tr_newton_cg_over_adam", "tr_newton_cg_over_lbfgs",
            "test_accuracy_mean", "baseline_logistic_accuracy_mean", "runs"} <= set(summary)
    names = {r["optimizer"] for r in summary["runs"]}
    assert {"tr_newton_cg", "tr_newton_cg_projected", "adam", "lbfgs", "tao_ntr",
            "tao_lmvm", "regression_tr_newton_cg", "regression_tr_newton_cg_projected",
            "regression_adam", "regression_lbfgs"} <= names
    assert {"target_loss", "tr_newton_cg_over_adam",
            "tr_newton_cg_projected_over_adam"} <= set(summary["regression"])
    for r in summary["runs"]:
        assert set(r) >= {"optimizer", "seed", "seconds_to_target", "iterations", "gradients",
                          "hessian_actions", "final_loss"}
    for name in ("adam", "regression_adam"):  # Adam reaches 1.05 x its own best
        adam = next(r for r in summary["runs"] if r["optimizer"] == name)
        assert adam["seconds_to_target"] is not None
    assert (out / "table.md").read_text().startswith("B5")
    assert (out / "loss.png").stat().st_size > 0
    # --resume takes every finished run from runs-ci.jsonl: the same summary, nothing rerun
    # (a rerun would measure other times)
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "optimizers.py"), "--size", "ci",
                    "--seeds", "0", "--resume"], check=True, capture_output=True,
                   env={**os.environ, **env})
    assert json.loads((out / "summary.json").read_text()) == summary
    # a store of runs on other problems is not resumed
    store = out / "runs-ci.jsonl"
    store.write_text(store.read_text().replace("shift coordinates", "difference coordinates", 1))
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "optimizers.py"), "--size",
                          "ci", "--seeds", "0", "--resume"], capture_output=True, text=True,
                         env={**os.environ, **env})
    assert run.returncode != 0 and "holds runs of other problems" in run.stderr


def test_digits_study_runs_a_configuration(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "digits_study.py"), "--limit",
                    "100", "iterations=2", "T=1", "projection=1"], check=True,
                   capture_output=True, env={**os.environ, "PDEOPT_RESULTS": str(tmp_path)})
    (run,) = [json.loads(line) for line in
              (tmp_path / "digits_study" / "runs.jsonl").read_text().splitlines()]
    assert run["T"] == 1.0 and run["projection"] == 1 and run["iterations"] == 2
    assert 0 <= run["validation_accuracy"] <= 1 and len(run["trajectory"]) <= 2


def test_digits_study_votes():
    """Starts that differ only in the seed vote with their averaged class probabilities."""
    study = runpy.run_path(str(ROOT / "benchmarks" / "digits_study.py"))
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


@pytest.mark.parallel(nprocs=2)
def test_parallel_benchmark_writes_b7(tmp_path_factory, monkeypatch):
    comm = MPI.COMM_WORLD
    tmp = Path(comm.bcast(str(tmp_path_factory.mktemp("b7")) if comm.rank == 0 else None))
    monkeypatch.setenv("PDEOPT_RESULTS", str(tmp))
    monkeypatch.setattr(sys, "argv", ["parallel.py", "--size", "ci", "--repeat", "1"])
    runpy.run_path(str(ROOT / "benchmarks" / "parallel.py"), run_name="__main__")
    if comm.rank == 0:
        summary = json.loads((tmp / "parallel" / "summary.json").read_text())
        assert set(summary) >= {"speedup_spatial", "speedup_ensemble", "bandwidth_gain",
                                "efficiency"}
        assert summary["efficiency"] == pytest.approx(
            max(summary["speedup_spatial"], summary["speedup_ensemble"])
            / summary["bandwidth_gain"])
