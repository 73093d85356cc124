"""Trust-region Newton-CG: the loop on analytic problems and on the network, every stop,
faults, resume, counts, options and the monitor."""

import json

import numpy as np
import pytest

import pdeopt
from analytic import AnalyticFunctional, quadratic, rosenbrock, saddle
from pdeopt import (GaussNewtonHessian, LMVMPC, SubsampledHessian, TerminationReason,
                    TrustRegionNewtonCG)
from problems import make_problem


def test_convex_quadratic_in_one_newton_step():
    Jhat, minimiser = quadratic()
    result = TrustRegionNewtonCG(Jhat, parameters={"radius": 1e3, "forcing": "fixed"},
                                 solver_parameters={"ksp_rtol": 1e-14}).solve()
    assert result.reason is TerminationReason.CONVERGED_GATOL
    assert result.iterations == 1
    assert np.max(np.abs(result.theta - minimiser)) < 1e-10
    # The model decrease that PETSc reports is the quadratic's exact decrease.
    assert result.history[1]["rho"] == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("ksp_type", ["stcg", "nash", "gltr"])
def test_rosenbrock(ksp_type):
    result = TrustRegionNewtonCG(rosenbrock(), parameters={"max_it": 150},
                                 solver_parameters={"ksp_type": ksp_type}).solve()
    assert result.converged, result.reason
    assert np.allclose(result.theta, [1.0, 1.0], atol=1e-7)
    assert result.counts.rejected < result.iterations


def test_negative_curvature_leads_away_from_the_saddle():
    result = TrustRegionNewtonCG(saddle()).solve()
    assert result.converged
    assert np.allclose(np.abs(result.theta), [0.0, 1.0], atol=1e-7)
    assert result.history[2]["ksp_reason"] == "CONVERGED_NEG_CURVE"
    assert result.objective == pytest.approx(-0.25, abs=1e-12)


def small_problem():
    """One channel, one layer: no channel-permutation symmetry, so one local minimum nearby."""
    return make_problem("parabolic", channels=1, depth=1)


def test_agrees_with_scipy_trust_krylov():
    """From a point in a minimum's basin (non-convex: other starts may find other minima)."""
    from scipy.optimize import minimize
    _, _, Jhat, theta = small_problem()
    start = TrustRegionNewtonCG(Jhat, parameters={"gatol": 1e-2}).solve(theta).theta
    result = TrustRegionNewtonCG(Jhat, parameters={"gatol": 1e-9, "max_it": 100}).solve(start)
    assert result.converged, result.reason
    # SciPy stops at gtol 3e-8, thirtyfold below the gradient checked on ref.x. Closer to
    # round-off (1e-11 here) its exact subproblem solver stalls at one point: measured at
    # gtol 1e-8, trlib then took a run-dependent number of Hessian actions and in one run of
    # four returned NaN steps (the pdeopt side is bitwise reproducible; SciPy 1.17's trlib is not).
    ref = minimize(Jhat.objective, start, jac=Jhat.gradient, hessp=Jhat.hessian_action,
                   method="trust-krylov",
                   options={"gtol": 3e-8, "inexact": False, "maxiter": 200})
    assert np.linalg.norm(Jhat.gradient(ref.x)) < 1e-6
    assert result.objective == pytest.approx(ref.fun, rel=1e-10)
    assert np.linalg.norm(result.theta - ref.x) <= 1e-5 * np.linalg.norm(ref.x)


@pytest.fixture(scope="module")
def network_problem():
    return make_problem("parabolic")


STOPS = {
    "max_it": ({"max_it": 2}, TerminationReason.DIVERGED_MAXITS),
    "grtol": ({"grtol": 0.5, "gatol": 0.0}, TerminationReason.CONVERGED_GRTOL),
    "gatol": ({"gatol": 1e3}, TerminationReason.CONVERGED_GATOL),
    "fmin": ("fmin", TerminationReason.CONVERGED_FMIN),
    "max_seconds": ({"max_seconds": 1e-9}, TerminationReason.DIVERGED_MAXTIME),
    "max_work": ({"max_work": 12.0}, TerminationReason.DIVERGED_MAXWORK),
}


@pytest.mark.parametrize("stop", STOPS)
def test_every_stop_is_reported(network_problem, stop):
    _, _, Jhat, theta = network_problem
    params, reason = STOPS[stop]
    J0 = Jhat.objective(theta)
    if params == "fmin":
        params = {"fmin": 0.9 * J0}
    result = TrustRegionNewtonCG(Jhat, parameters=params).solve(theta)
    assert result.reason is reason
    assert result.converged is reason.name.startswith("CONVERGED")
    objectives = [h["objective"] for h in result.history]
    if stop == "fmin":
        assert objectives[-1] <= 0.9 * J0 < min(objectives[:-1])
    if stop == "max_seconds":
        assert result.iterations == 0 and np.array_equal(result.theta, theta)
    if stop == "max_work":  # the first iteration that reaches the budget stops the solve
        work = [h["counts"]["work"] for h in result.history]
        assert work[-1] == result.counts.work >= 12.0 > work[-2]


def test_a_wrong_gradient_collapses_the_radius():
    """The model never predicts the objective: DIVERGED_TR_REDUCTION at the start point."""
    q, _ = quadratic()
    wrong = AnalyticFunctional(q.f, lambda x: -q.grad(x), q.hess, q.point)
    result = TrustRegionNewtonCG(wrong, parameters={"radius_min": 1e-6}).solve()
    assert result.reason is TerminationReason.DIVERGED_TR_REDUCTION
    assert not result.converged and np.array_equal(result.theta, q.point)


def test_diverged_inner_solve_raises_with_petsc_reason_and_keeps_the_iterate():
    q, _ = quadratic()
    broken = AnalyticFunctional(q.f, q.grad, lambda x: np.full((x.size, x.size), np.nan),
                                q.point)
    with pytest.raises(pdeopt.ConvergenceError, match="DIVERGED_NANORINF") as info:
        TrustRegionNewtonCG(broken).solve()
    assert info.value.result.reason is TerminationReason.DIVERGED_LINEAR_SOLVE
    assert np.array_equal(info.value.result.theta, q.point)


def test_non_finite_start_is_an_error_before_any_work(network_problem):
    _, _, Jhat, theta = network_problem
    bad = theta.copy()
    bad[3] = np.nan
    before = Jhat.counts
    with pytest.raises(pdeopt.InputError, match="finite"):
        TrustRegionNewtonCG(Jhat).solve(bad)
    assert Jhat.counts == before


def test_non_finite_trial_point_is_a_rejected_step():
    rb = rosenbrock()
    # NaN outside a ball around the minimiser (1, 1) that the first, too long, steps leave.
    fenced = AnalyticFunctional(lambda x: rb.f(x) if np.linalg.norm(x) < 3.0 else np.nan,
                                rb.grad, rb.hess, rb.point)
    result = TrustRegionNewtonCG(fenced, parameters={"radius": 100.0, "max_it": 150}).solve()
    assert result.converged
    nan_steps = [h for h in result.history if not h["accepted"] and h["rho"] is None]
    assert nan_steps and result.counts.rejected >= len(nan_steps)
    assert np.allclose(result.theta, [1.0, 1.0], atol=1e-7)


@pytest.mark.parametrize("make_pc, make_hessian", [
    (lambda: None, lambda: None), (LMVMPC, lambda: None),
    (LMVMPC, lambda: SubsampledHessian(0.4, GaussNewtonHessian()))],
    ids=["none", "lmvm", "lmvm-subsampled-gauss-newton"])
def test_resume_reproduces_the_uninterrupted_run(tmp_path, make_pc, make_hessian):
    _, _, Jhat, theta = make_problem("parabolic")

    def solver(max_it, **kwargs):
        return TrustRegionNewtonCG(Jhat, parameters={"max_it": max_it},
                                   hessian=make_hessian(), preconditioner=make_pc(), **kwargs)

    full = solver(6).solve(theta)
    first = solver(3, checkpoint=tmp_path / "ckpt").solve(theta)
    assert first.iterations == 3
    # the two newest generations are kept, each a JSON file and its arrays
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "state-000002.h5", "state-000002.json", "state-000003.h5", "state-000003.json"]
    state = json.loads((tmp_path / "ckpt" / "state-000003.json").read_text())
    assert state["iteration"] == 3 and state["state"]["iteration"] == 3
    resumed = solver(6, checkpoint=tmp_path / "ckpt").solve(resume=True)
    assert resumed.iterations == 6
    assert np.linalg.norm(resumed.theta - full.theta) <= 1e-10 * np.linalg.norm(full.theta)
    assert [h["objective"] for h in resumed.history] == pytest.approx(
        [h["objective"] for h in full.history], rel=1e-10)


def test_subsampled_gauss_newton_model_trains_at_a_fraction_of_the_work():
    _, _, Jhat, theta = make_problem("parabolic")
    full = TrustRegionNewtonCG(Jhat, parameters={"max_it": 8}, hessian=GaussNewtonHessian(),
                               preconditioner=LMVMPC()).solve(theta)
    c = full.counts
    assert c.work == c.forward + c.adjoint + 2 * c.hessian_actions
    sampled = TrustRegionNewtonCG(Jhat, parameters={"max_it": 8},
                                  hessian=SubsampledHessian(0.4, GaussNewtonHessian()),
                                  preconditioner=LMVMPC()).solve(theta)
    c = sampled.counts
    # the objective and the gradient stay those of the whole batch
    assert sampled.objective == pytest.approx(Jhat.objective(sampled.theta), rel=1e-14)
    assert sampled.objective < 0.5 * Jhat.objective(theta)
    assert c.hessian_actions == c.gauss_newton == c.ksp_iterations > 0
    # a 2-of-5 sample's sweeps cost 0.4 of the batch's: one draw (a taped forward, and an
    # adjoint once it is used) per accepted iterate, 2 sweeps per action
    whole, draws = c.forward + c.adjoint, 1 + sampled.iterations - c.rejected
    assert (whole + 0.4 * (2 * c.hessian_actions + 2 * draws - 1) <= c.work
            <= whole + 0.4 * (2 * c.hessian_actions + 2 * draws) + 1e-12)


def test_growing_sample_becomes_the_whole_batch_and_lifts_the_krylov_limit(tmp_path):
    """f_k = min(1, f_0 gamma^(k - k_0)): one Krylov iteration per subproblem while the model is
    a sample's, the KSP's own limit and no more draws once it is the whole batch's; a resumed
    solve grows the sample alike."""
    _, _, Jhat, theta = make_problem("parabolic")

    def hessian():
        return SubsampledHessian(0.2, GaussNewtonHessian(), growth=2.0, growth_from=2,
                                 krylov_limit=1)

    assert [hessian().fraction_at(k) for k in (0, 2, 3, 4, 5)] == [0.2, 0.2, 0.4, 0.8, 1.0]
    h = hessian()
    # Seven iterations: along this path a change of 1e-16 in theta grows to 3e-11 in J by
    # the seventh and to 7e-9 by the ninth (measured), so that only a path this short can be
    # compared to 1e-10 whatever the last bit of a reduction does.
    result = TrustRegionNewtonCG(Jhat, parameters={"max_it": 7, "gatol": 0.0},
                                 hessian=h, preconditioner=LMVMPC(),
                                 solver_parameters={"ksp_rtol": 1e-12}).solve(theta)
    accepted_at, sampled = 0, []
    for entry in result.history[1:]:
        sampled.append(h.fraction_at(accepted_at) < 1)
        if entry["accepted"]:
            accepted_at = entry["iteration"]
        if sampled[-1]:
            assert entry["ksp_iterations"] <= 1
    assert any(sampled) and not all(sampled)
    whole = [e["ksp_iterations"] for e, s in zip(result.history[1:], sampled) if not s]
    assert max(whole) > 1  # the whole batch's model: CG runs to its tolerance
    assert h.current_fraction == 1.0 and h._sample is None
    # the counts: the whole batch's actions are the functional's, not counted twice
    c = result.counts
    assert c.gauss_newton == c.ksp_iterations
    # resumed half-way, the same path
    first = TrustRegionNewtonCG(Jhat, parameters={"max_it": 4, "gatol": 0.0}, hessian=hessian(),
                                preconditioner=LMVMPC(), solver_parameters={"ksp_rtol": 1e-12},
                                checkpoint=tmp_path / "ckpt").solve(theta)
    assert first.iterations == 4
    resumed = TrustRegionNewtonCG(Jhat, parameters={"max_it": 7, "gatol": 0.0},
                                  hessian=hessian(), preconditioner=LMVMPC(),
                                  solver_parameters={"ksp_rtol": 1e-12},
                                  checkpoint=tmp_path / "ckpt").solve(resume=True)
    assert [e["objective"] for e in resumed.history] == pytest.approx(
        [e["objective"] for e in result.history], rel=1e-10)


@pytest.mark.parametrize("kwargs, match", [
    ({"growth": 0.5}, "growth"), ({"growth_from": -1}, "growth_from"),
    ({"krylov_limit": 0}, "krylov_limit"), ({"krylov_limit": 1.5}, "krylov_limit")])
def test_sample_growth_is_checked(kwargs, match):
    with pytest.raises(pdeopt.OptionError, match=match):
        SubsampledHessian(0.5, **kwargs)


def test_resume_without_checkpoint_is_an_error(tmp_path, network_problem):
    Jhat = network_problem[2]
    with pytest.raises(pdeopt.CheckpointError, match="no checkpoint"):
        TrustRegionNewtonCG(Jhat, checkpoint=tmp_path / "none").solve(resume=True)


@pytest.mark.parametrize("kwargs, match", [
    ({"parameters": {"max_iters": 3}}, "max_iters"),
    ({"parameters": {"hessian_sample": 0.5}}, "SubsampledHessian"),
    ({"parameters": {"max_seconds": 0.0}}, "max_seconds"),
    ({"parameters": {"max_work": -1.0}}, "max_work"),
    ({"parameters": {"fmin": np.nan}}, "fmin"),
    ({"solver_parameters": {"ksp_bogus": 1}}, "ksp_bogus"),
    ({"solver_parameters": {"ksp_type": "gmres"}}, "ksp_type"),
    ({"solver_parameters": {"pc_type": "jacobi"}}, "preconditioner=")],
    ids=["unknown", "old-flag", "max_seconds", "max_work", "fmin", "ksp_bogus", "ksp_type",
         "pc_type"])
def test_options_are_checked(network_problem, kwargs, match):
    with pytest.raises(pdeopt.OptionError, match=match):
        TrustRegionNewtonCG(network_problem[2], **kwargs)


@pytest.mark.parametrize("fraction", [0.0, 1.5])
def test_sample_fraction_is_checked(fraction):
    with pytest.raises(pdeopt.OptionError, match="fraction"):
        SubsampledHessian(fraction)


def test_subsampling_needs_a_functional_that_subsamples():
    with pytest.raises(pdeopt.OptionError, match="subsampled"):
        TrustRegionNewtonCG(rosenbrock(), hessian=SubsampledHessian(0.5))


def test_only_array_functionals_are_minimised():
    with pytest.raises(pdeopt.InputError, match="ArrayFunctional"):
        TrustRegionNewtonCG(lambda x: x @ x)


def test_command_line_selects_the_subproblem_solver(network_problem, petsc_option):
    _, _, Jhat, theta = network_problem
    petsc_option("mytr_ksp_type", "nash")
    solver = TrustRegionNewtonCG(Jhat, parameters={"max_it": 2}, options_prefix="mytr_")
    assert solver.subproblem.ksp.getType() == "nash"
    assert solver.solve(theta).objective < Jhat.objective(theta)


def test_counts_and_history_on_the_network(tmp_path):
    _, _, Jhat, theta = make_problem("parabolic")  # taped at theta: no sweep before the solve
    result = TrustRegionNewtonCG(Jhat, parameters={"max_it": 4}).solve(theta)
    c = result.counts
    assert c.hessian_actions == c.soa == c.ksp_iterations > 0
    # one trial forward per iteration, one adjoint at the start and per accepted step
    assert c.forward == result.iterations and c.adjoint == 1 + result.iterations - c.rejected
    accepted = [h["objective"] for h in result.history if h["accepted"]]
    assert accepted == sorted(accepted, reverse=True)
    pdeopt.write_json(tmp_path / "history.json", result.as_dict())
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["reason"] == "DIVERGED_MAXITS" and len(saved["history"]) == 5
    assert pdeopt.Counts.from_dict(saved["counts"]) == c


@pytest.mark.parametrize("switch", ["none", "parameter", "command_line"])
def test_the_monitor_is_off_by_default_and_switched_on_petsc_style(capfd, petsc_option,
                                                                   switch):
    q, _ = quadratic()
    params = {"monitor": None} if switch == "parameter" else {}
    if switch == "command_line":
        petsc_option("pdeopt_tr_monitor", "")
    result = TrustRegionNewtonCG(q, solver_parameters=params).solve()
    out = capfd.readouterr().out
    if switch == "none":
        assert out == ""
    else:
        assert out.count(" TR stcg ") == len(result.history)
        assert "CONVERGED_GATOL" in out.splitlines()[-1]
