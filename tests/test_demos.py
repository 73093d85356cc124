"""Every demo runs at its CI size (PDEOPT_DEMO_SIZE=ci) and writes its results."""

import json
import runpy
from pathlib import Path

import pytest
from mpi4py import MPI

DEMOS = Path(__file__).resolve().parents[1] / "demos"
ALL_DEMOS = sorted(p.name for p in DEMOS.iterdir() if (p / f"{p.name}.py").exists())


def _run(name, tmp_path, monkeypatch, **env):
    monkeypatch.setenv("PDEOPT_DEMO_SIZE", "ci")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PDEOPT_RESULTS", str(tmp_path))
    runpy.run_path(str(DEMOS / name / f"{name}.py"), run_name="__main__")


def test_every_demo_is_tested():
    assert ALL_DEMOS == ["digits", "surrogate"], "add the new demo to tests/test_demos.py"


def test_digits_demo(tmp_path, monkeypatch):
    _run("digits", tmp_path, monkeypatch)
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert set(summary) == {"test_accuracy", "baseline_logistic_accuracy", "train_loss",
                            "iterations", "wall_seconds", "solver", "scheme", "seed",
                            "validation_accuracy", "starts"}
    assert summary["scheme"] == "parabolic" and summary["solver"] == "TrustRegionNewtonCG"
    assert [s["seed"] for s in summary["starts"]] == [0, 1]
    assert [s["iterations"] for s in summary["starts"]] == [8, 8] and summary["iterations"] == 16
    # 180 training digits, 8 Gauss-Newton trust-region steps from each start: far better than
    # chance (0.1), each network and their average.
    assert summary["test_accuracy"] > 0.6
    assert min(s["test_accuracy"] for s in summary["starts"]) > 0.6
    starts = json.loads((tmp_path / "demo" / "history.json").read_text())["starts"]
    for start in starts:
        assert start["history"][-1]["objective"] < start["history"][0]["objective"]
    assert (tmp_path / "demo" / "convergence.png").stat().st_size > 0


def test_surrogate_demo(tmp_path, monkeypatch):
    _run("surrogate", tmp_path, monkeypatch)
    summary = json.loads((tmp_path / "surrogate" / "summary.json").read_text())
    full, projected = summary["full"], summary["projected"]
    assert full["iterations"] == projected["iterations"] == 6
    # the same iterations get further with the readout eliminated
    assert projected["train_loss"] < full["train_loss"]
    # both predict better than zero (relative error 1)
    assert max(full["test_relative_error"], projected["test_relative_error"]) < 0.5
    assert (tmp_path / "surrogate" / "convergence.png").stat().st_size > 0


def test_digits_demo_with_tao(tmp_path, monkeypatch):
    _run("digits", tmp_path, monkeypatch, PDEOPT_DEMO_SOLVER="tao")
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["solver"] == "TAO-lmvm" and summary["iterations"] == 40
    assert summary["test_accuracy"] > 0.6


def _run_on_two_ranks(name, out, tmp_path_factory, monkeypatch, **env):
    """Run a demo on both ranks; its summary on rank 0, ``None`` on the other."""
    comm = MPI.COMM_WORLD
    tmp = Path(comm.bcast(str(tmp_path_factory.mktemp(name)) if comm.rank == 0 else None))
    _run(name, tmp, monkeypatch, **env)
    return json.loads((tmp / out / "summary.json").read_text()) if comm.rank == 0 else None


@pytest.mark.parallel(nprocs=2)
def test_digits_demo_on_two_ranks(tmp_path_factory, monkeypatch):
    summary = _run_on_two_ranks("digits", "demo", tmp_path_factory, monkeypatch)
    if summary is not None:
        assert summary["test_accuracy"] > 0.6


@pytest.mark.parallel(nprocs=2)
def test_digits_demo_on_two_ensemble_members(tmp_path_factory, monkeypatch):
    summary = _run_on_two_ranks("digits", "demo", tmp_path_factory, monkeypatch,
                                PDEOPT_DEMO_MEMBERS="2")
    if summary is not None:
        assert summary["test_accuracy"] > 0.6 and summary["iterations"] == 16


def test_ensemble_that_does_not_divide_the_ranks_is_an_error(tmp_path, monkeypatch):
    import pdeopt
    with pytest.raises(pdeopt.InputError, match="must divide"):
        _run("digits", tmp_path, monkeypatch, PDEOPT_DEMO_MEMBERS="2")
    assert not (tmp_path / "demo").exists()


@pytest.mark.parallel(nprocs=2)
def test_surrogate_demo_on_two_ranks(tmp_path_factory, monkeypatch):
    summary = _run_on_two_ranks("surrogate", "surrogate", tmp_path_factory, monkeypatch)
    if summary is not None:
        assert summary["projected"]["train_loss"] < summary["full"]["train_loss"]
