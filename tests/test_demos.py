"""Every demo runs at its CI size (PDEOPT_DEMO_SIZE=ci) and writes its results.

As Firedrake's ``test_demos_run.py``: the demos are a list, each run serially and, where listed,
on two ranks; a demo in ``demos/`` that is not in the list fails ``test_no_missing_demos``.
"""

import json
import runpy
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

DEMO_DIR = Path(__file__).resolve().parents[1] / "demos"

#: ``name``: ``demos/<name>/<name>.py``; ``out``: its results directory; ``env``: extra
#: environment; ``check(summary, out)``: what its results must show.
Demo = namedtuple("Demo", ["name", "out", "env", "check"])


def check_digits(summary, out):
    assert set(summary) == {"test_accuracy", "baseline_logistic_accuracy", "train_loss",
                            "iterations", "wall_seconds", "solver", "scheme", "seed",
                            "validation_accuracy", "starts"}  # the schema
    assert summary["scheme"] == "parabolic" and summary["solver"] == "TrustRegionNewtonCG"
    assert [s["seed"] for s in summary["starts"]] == [0, 1]
    assert [s["iterations"] for s in summary["starts"]] == [8, 8] and summary["iterations"] == 16
    # 180 training digits, 8 Gauss-Newton trust-region steps from each start: far better than
    # chance (0.1), each network and their average.
    assert summary["test_accuracy"] > 0.6
    assert min(s["test_accuracy"] for s in summary["starts"]) > 0.6
    assert summary["wall_seconds"] > 0
    for start in json.loads((out / "history.json").read_text())["starts"]:
        assert start["history"][-1]["objective"] < start["history"][0]["objective"]


def check_surrogate(summary, out):
    full, projected = summary["full"], summary["projected"]
    assert full["iterations"] == projected["iterations"] == 6
    # the same iterations get further with the readout eliminated
    assert projected["train_loss"] < full["train_loss"]
    # both predict better than zero (relative error 1)
    assert max(full["test_relative_error"], projected["test_relative_error"]) < 0.5


def check_transport(summary, out):
    assert {"margin_min", "violations_within_bound", "violations_past_bound",
            "growth_past_bound", "loss_initial", "loss_final", "error_vs_width", "error_vs_N",
            "wall_seconds"} <= set(summary)
    # the trained leapfrog network is stable at its own step, and 1.5x its least bound is not
    assert summary["margin_min"] > 0 and summary["violations_within_bound"] == 0
    assert summary["violations_past_bound"] > 0 and summary["growth_past_bound"] > 1.0
    assert summary["amplification_past_bound"] > 10 * summary["amplification_within_bound"]
    assert summary["loss_final"] < 0.5 * summary["loss_initial"]
    widths = summary["error_vs_width"]
    assert len(widths["widths"]) == len(widths["network"]) == len(widths["upwind"]) >= 3
    # the upwind scheme's error grows as the front sharpens
    assert widths["upwind"][-1] > widths["upwind"][0]
    depths = summary["error_vs_N"]
    assert len(depths["N"]) == len(depths["network"]) == len(depths["upwind"])
    # the upwind scheme runs where its CFL condition allows, and only there
    assert depths["upwind"][0] is None and depths["upwind"][-1] is not None
    assert all(0 < e < 2 for e in depths["network"])
    for name in ("eigenvalues.png", "error_vs_N.png", "error_vs_width.png"):
        assert (out / name).stat().st_size > 0


def check_calibration(summary, out):
    import sqlite3
    assert set(summary["evaluations"]) == {"nomad", "optuna", "random"}
    assert all(n == 4 for n in summary["evaluations"].values())
    assert summary["best_found"][summary["best_backend"]] == min(
        v for v in summary["best_found"].values() if v is not None)
    assert len(summary["reevaluated"]) == 2 and summary["seed_noise_std"] >= 0
    with sqlite3.connect(out / "calibration.sqlite") as db:  # one row per evaluation
        rows = db.execute("SELECT COUNT(*) FROM pdeopt_evaluations").fetchone()[0]
    assert rows == 3 * 4 + 2


def check_delay(summary, out):
    assert {"integrator_order", "mackey_glass", "hopf_threshold_ratio", "lyapunov_margin_ratio",
            "learned_delay_rel_error", "learned_delay_iterations", "wall_seconds"} <= set(summary)
    # explicit Euler against jitcdde: first order
    assert 0.95 < summary["integrator_order"] < 1.05
    mg = summary["mackey_glass"]
    assert set(mg["forecast_rel_error"]) == {"17", "25"}
    # one delay period ahead the law trained at 5 and 10 follows the trajectory at 17
    assert mg["forecast_rel_error_one_period"]["17"] < 0.2
    assert mg["lyapunov_exponent"]["true"] > 0  # chaotic at tau = 17
    # the learned delay does not move away from the true one (15 -> 17: 11.8 %)
    assert summary["learned_delay_rel_error"] <= 2 / 17 + 1e-3
    # the true discrete model's threshold lies near r tau = pi/2, the learned one's near it
    assert abs(summary["hopf_threshold"]["true"] / (np.pi / 2) - 1) < 0.05
    assert abs(summary["hopf_threshold_ratio"] - 1) < 0.1
    assert (out / "forecast.png").stat().st_size > 0
    # the learned functional certifies most of the way to the layer's margin and nothing past
    lk = summary["lyapunov_krasovskii"]
    assert 0.5 * lk["discrete_margin"] < lk["certified_delay"] < lk["discrete_margin"]
    assert summary["lyapunov_margin_ratio"] == lk["certified_delay"] / lk["exact_margin"]
    assert lk["certified_past"] == 0 and (out / "lyapunov.png").stat().st_size > 0


DIGITS = Demo("digits", "demo", {}, check_digits)
SURROGATE = Demo("surrogate", "surrogate", {}, check_surrogate)
TRANSPORT = Demo("transport", "transport", {}, check_transport)
CALIBRATION = Demo("calibration", "calibration_demo", {}, check_calibration)
DELAY = Demo("delay", "delay", {}, check_delay)
SERIAL_DEMOS = [DIGITS, SURROGATE, TRANSPORT, CALIBRATION, DELAY]
PARALLEL_DEMOS = [DIGITS,  # the mesh partitioned over both ranks
                  DIGITS._replace(env={"PDEOPT_DEMO_MEMBERS": "2"}),  # a start per rank
                  SURROGATE, TRANSPORT]


def _id(demo):
    return "-".join([demo.name, *(f"{k}={v}" for k, v in demo.env.items())])


def _run(name, out_root, monkeypatch, env=()):
    monkeypatch.setenv("PDEOPT_DEMO_SIZE", "ci")
    monkeypatch.setenv("PDEOPT_RESULTS", str(out_root))
    for key, value in dict(env).items():
        monkeypatch.setenv(key, value)
    runpy.run_path(str(DEMO_DIR / name / f"{name}.py"), run_name="__main__")


def _run_and_check(demo, out_root, monkeypatch):
    """Run ``demo``; every rank then checks the files that rank 0 wrote."""
    _run(demo.name, out_root, monkeypatch, demo.env)
    out = out_root / demo.out
    demo.check(json.loads((out / "summary.json").read_text()), out)
    assert (out / "convergence.png").stat().st_size > 0


def test_no_missing_demos():
    found = sorted(p.name for p in DEMO_DIR.iterdir() if (p / f"{p.name}.py").exists())
    assert found == sorted(d.name for d in SERIAL_DEMOS), "add the new demo to SERIAL_DEMOS"


@pytest.mark.parametrize("demo", SERIAL_DEMOS, ids=_id)
def test_serial_demo(demo, tmp_path, monkeypatch):
    _run_and_check(demo, tmp_path, monkeypatch)


@pytest.mark.parallel(nprocs=2)
@pytest.mark.parametrize("demo", PARALLEL_DEMOS, ids=_id)
def test_parallel_demo(demo, tmp_path_factory, monkeypatch):
    comm = MPI.COMM_WORLD
    tmp = Path(comm.bcast(str(tmp_path_factory.mktemp(demo.name)) if comm.rank == 0 else None))
    _run_and_check(demo, tmp, monkeypatch)


def test_ensemble_that_does_not_divide_the_ranks_is_an_error(tmp_path, monkeypatch):
    import pdeopt
    with pytest.raises(pdeopt.InputError, match="must divide"):
        _run("digits", tmp_path, monkeypatch, {"PDEOPT_DEMO_MEMBERS": "2"})
    assert not (tmp_path / "demo").exists()
