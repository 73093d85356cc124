"""Trust-region Newton-CG: analytic problems, every stop, faults, resume, and the network."""

import json

import numpy as np
import pytest
from petsc4py import PETSc

import pdeopt
from analytic import AnalyticFunctional, quadratic, rosenbrock, saddle
from conftest import digits_batch, make_problem
from pdeopt import TerminationReason, TrustRegionNewtonCG
from pdeopt.solvers.preconditioners import LMVMPC, LowRankPC, RegularizerPC


def test_convex_quadratic_in_one_newton_step():
    Jhat, minimiser = quadratic()
    result = TrustRegionNewtonCG(Jhat, {"radius": 1e3, "forcing": "fixed"},
                                 solver_parameters={"ksp_rtol": 1e-14}, monitor=False).solve()
    assert result.reason is TerminationReason.CONVERGED_GATOL
    assert result.iterations == 1
    assert np.max(np.abs(result.theta - minimiser)) < 1e-10
    # The model decrease that PETSc reports is the quadratic's exact decrease.
    assert result.history[1]["rho"] == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("ksp_type", ["stcg", "nash", "gltr"])
def test_rosenbrock(ksp_type):
    result = TrustRegionNewtonCG(rosenbrock(), {"max_it": 150},
                                 solver_parameters={"ksp_type": ksp_type}, monitor=False).solve()
    assert result.converged, result.reason
    assert np.allclose(result.theta, [1.0, 1.0], atol=1e-7)
    assert result.counts["rejected"] < result.iterations


def test_negative_curvature_leads_away_from_the_saddle():
    result = TrustRegionNewtonCG(saddle(), monitor=False).solve()
    assert result.converged
    assert np.allclose(np.abs(result.theta), [0.0, 1.0], atol=1e-7)
    assert result.history[2]["ksp_reason"] == "CONVERGED_NEG_CURVE"
    assert result.objective == pytest.approx(-0.25, abs=1e-12)


def _small_problem():
    """One channel, one layer: no channel-permutation symmetry, so one local minimum nearby."""
    return make_problem("parabolic", channels=1, depth=1)


def test_agrees_with_scipy_trust_krylov():
    """From a point in a minimum's basin (non-convex: other starts may find other minima)."""
    from scipy.optimize import minimize
    _, _, rf, theta = _small_problem()
    start = TrustRegionNewtonCG(rf, {"gatol": 1e-2}, monitor=False).solve(theta).theta
    result = TrustRegionNewtonCG(rf, {"gatol": 1e-9, "max_it": 100}, monitor=False).solve(start)
    assert result.converged, result.reason
    # SciPy's gtol 1e-9 is at round-off here: it may stall at the minimum until its maxiter
    # (200 n by default, minutes of Hessian actions), so bound it; the checks are on ref.x.
    ref = minimize(rf.objective, start, jac=rf.gradient, hessp=rf.hessian_action,
                   method="trust-krylov",
                   options={"gtol": 1e-9, "inexact": False, "maxiter": 200})
    assert np.linalg.norm(rf.gradient(ref.x)) < 1e-6
    assert result.objective == pytest.approx(ref.fun, rel=1e-10)
    assert np.linalg.norm(result.theta - ref.x) <= 1e-5 * np.linalg.norm(ref.x)


@pytest.mark.parametrize("make_pc", [lambda rf: RegularizerPC(rf.regularizer),
                                     lambda rf: LMVMPC(),
                                     lambda rf: LowRankPC(rf.regularizer, rank=8, oversampling=4)],
                         ids=["regularizer", "lmvm", "low_rank"])
def test_preconditioners_reach_the_same_minimum(make_pc):
    _, _, rf, theta = _small_problem()
    plain = TrustRegionNewtonCG(rf, {"gatol": 1e-9, "max_it": 100}, monitor=False).solve(theta)
    result = TrustRegionNewtonCG(rf, {"gatol": 1e-9, "max_it": 100}, preconditioner=make_pc(rf),
                                 monitor=False).solve(theta)
    assert result.converged, result.reason
    assert result.objective == pytest.approx(plain.objective, rel=1e-10)
    assert np.linalg.norm(result.theta - plain.theta) <= 1e-5 * np.linalg.norm(plain.theta)


def test_regularizer_pc_solves_the_regularizer_hessian():
    _, model, rf, theta = make_problem("parabolic")
    solver = TrustRegionNewtonCG(rf, preconditioner=RegularizerPC(rf.regularizer), monitor=False)
    pc = solver.ksp.getPC()
    x, y = solver._x.duplicate(), solver._x.duplicate()
    v = np.random.default_rng(0).standard_normal(rf.size)
    x.setArray(rf.regularizer.hessian_action(v)[slice(*x.getOwnershipRange())])
    pc.apply(x, y)
    assert np.allclose(y.getArray(), v[slice(*y.getOwnershipRange())], rtol=1e-10, atol=1e-12)


def test_low_rank_pc_captures_the_misfit_spectrum():
    """Sampling the whole space, the nonzero generalised eigenvalues of (H - H_R, H_R) are exact."""
    _, _, rf, theta = make_problem("parabolic", channels=1, depth=1)
    pc = LowRankPC(rf.regularizer, rank=rf.size, oversampling=0)
    solver = TrustRegionNewtonCG(rf, preconditioner=pc, monitor=False)
    solver.ksp.getPC().setUp()
    pc.update(theta, rf.gradient(theta), rf)
    H = np.column_stack([rf.hessian_action(theta, e) for e in np.eye(rf.size)])
    HR = np.column_stack([rf.regularizer.hessian_action(e) for e in np.eye(rf.size)])
    lam = np.linalg.eigvals(np.linalg.solve(HR, H - HR)).real
    tol = 1e-6 * np.abs(lam).max()
    assert np.allclose(np.sort(pc.eigenvalues[np.abs(pc.eigenvalues) > tol]),
                       np.sort(lam[np.abs(lam) > tol]), rtol=1e-8, atol=1e-8 * tol)


def test_every_stop_is_reported():
    _, _, rf, theta = make_problem("parabolic")
    assert TrustRegionNewtonCG(rf, {"max_it": 2}, monitor=False).solve(theta).reason \
        is TerminationReason.DIVERGED_MAXITS
    assert TrustRegionNewtonCG(rf, {"grtol": 0.5, "gatol": 0.0}, monitor=False).solve(theta) \
        .reason is TerminationReason.CONVERGED_GRTOL
    assert TrustRegionNewtonCG(rf, {"gatol": 1e3}, monitor=False).solve(theta).reason \
        is TerminationReason.CONVERGED_GATOL
    J0 = rf.objective(theta)
    result = TrustRegionNewtonCG(rf, {"fmin": 0.9 * J0}, monitor=False).solve(theta)
    assert result.reason is TerminationReason.CONVERGED_FMIN and result.converged
    objectives = [h["objective"] for h in result.history]
    assert objectives[-1] <= 0.9 * J0 < min(objectives[:-1])
    result = TrustRegionNewtonCG(rf, {"max_seconds": 1e-9}, monitor=False).solve(theta)
    assert result.reason is TerminationReason.DIVERGED_MAXTIME and not result.converged
    assert result.iterations == 0 and np.array_equal(result.theta, theta)
    for bad in ({"max_seconds": 0.0}, {"fmin": np.nan}):
        with pytest.raises(pdeopt.OptionError):
            TrustRegionNewtonCG(rf, bad, monitor=False)
    # A wrong gradient: the model never predicts the objective, the radius collapses.
    q, _ = quadratic()
    wrong = AnalyticFunctional(q.f, lambda x: -q.grad(x), q.hess, q.point)
    result = TrustRegionNewtonCG(wrong, {"radius_min": 1e-6}, monitor=False).solve()
    assert result.reason is TerminationReason.DIVERGED_TR_REDUCTION
    assert not result.converged and np.array_equal(result.theta, q.point)


def test_diverged_inner_solve_raises_with_petsc_reason_and_keeps_the_iterate():
    q, _ = quadratic()
    broken = AnalyticFunctional(q.f, q.grad, lambda x: np.full((x.size, x.size), np.nan),
                                q.point)
    with pytest.raises(pdeopt.ConvergenceError, match="DIVERGED_NANORINF") as info:
        TrustRegionNewtonCG(broken, monitor=False).solve()
    assert info.value.result.reason is TerminationReason.DIVERGED_LINEAR_SOLVE
    assert np.array_equal(info.value.result.theta, q.point)


def test_non_finite_start_is_an_error_before_any_work():
    _, _, rf, theta = make_problem("parabolic")
    bad = theta.copy()
    bad[3] = np.nan
    before = dict(rf.counts)
    with pytest.raises(pdeopt.InputError, match="finite"):
        TrustRegionNewtonCG(rf, monitor=False).solve(bad)
    assert rf.counts == before


def test_non_finite_trial_point_is_a_rejected_step():
    rb = rosenbrock()
    # NaN outside a ball around the minimiser (1, 1) that the first, too long, steps leave.
    fenced = AnalyticFunctional(lambda x: rb.f(x) if np.linalg.norm(x) < 3.0 else np.nan,
                                rb.grad, rb.hess, rb.point)
    result = TrustRegionNewtonCG(fenced, {"radius": 100.0, "max_it": 150}, monitor=False).solve()
    assert result.converged
    nan_steps = [h for h in result.history if not h["accepted"] and h["rho"] is None]
    assert nan_steps and result.counts["rejected"] >= len(nan_steps)
    assert np.allclose(result.theta, [1.0, 1.0], atol=1e-7)


@pytest.mark.parametrize("make_pc, params", [
    (lambda rf: None, {}), (lambda rf: LMVMPC(), {}),
    (lambda rf: LMVMPC(), {"hessian": "gauss_newton", "hessian_sample": 0.4})],
    ids=["none", "lmvm", "lmvm-subsampled-gauss-newton"])
def test_resume_reproduces_the_uninterrupted_run(tmp_path, make_pc, params):
    _, _, rf, theta = make_problem("parabolic")
    full = TrustRegionNewtonCG(rf, {**params, "max_it": 6}, preconditioner=make_pc(rf),
                               monitor=False).solve(theta)
    first = TrustRegionNewtonCG(rf, {**params, "max_it": 3}, preconditioner=make_pc(rf),
                                monitor=False, checkpoint=tmp_path / "ckpt").solve(theta)
    assert first.iterations == 3
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    assert state["iteration"] == 3 and len(list((tmp_path / "ckpt").glob("*.h5"))) == 1
    resumed = TrustRegionNewtonCG(rf, {**params, "max_it": 6}, preconditioner=make_pc(rf),
                                  monitor=False, checkpoint=tmp_path / "ckpt").solve(resume=True)
    assert resumed.iterations == 6
    assert np.linalg.norm(resumed.theta - full.theta) <= 1e-10 * np.linalg.norm(full.theta)
    assert [h["objective"] for h in resumed.history] == pytest.approx(
        [h["objective"] for h in full.history], rel=1e-10)


def test_subsample_is_the_functional_of_its_samples():
    grid, model, rf, theta = make_problem("parabolic")
    sample = rf.subsample(0.4, seed=3)
    S = sample.samples
    assert len(S) == 2 and sample.fraction == 0.4 and np.all(np.diff(S) > 0)
    assert np.array_equal(rf.subsample(0.4, seed=3).samples, S)
    x, labels = digits_batch(grid)
    direct = pdeopt.ReducedFunctional(model, x[:, S], labels[S], rf.regularizer, theta=theta)
    d = np.random.default_rng(0).standard_normal(rf.size)
    assert sample.objective(theta) == pytest.approx(direct.objective(theta), rel=1e-12)
    assert np.allclose(sample.gauss_newton_action(theta, d),
                       direct.gauss_newton_action(theta, d), rtol=1e-12, atol=0)
    whole = rf.subsample(1.0, seed=0)
    assert whole.objective(theta) == pytest.approx(rf.objective(theta), rel=1e-12)
    with pytest.raises(pdeopt.InputError, match="fraction"):
        rf.subsample(0.0, seed=0)
    # field targets carry the batch on their second axis
    ops = pdeopt.assemble_operators(grid)
    network = pdeopt.Network(pdeopt.ParabolicScheme(ops, pdeopt.Tanh(), step=0.5), channels=1,
                             depth=1)
    field = pdeopt.Model(network, pdeopt.FieldMisfit(ops.mass, grid.comm))
    x = np.random.default_rng(0).random((grid.n_owned, 4, 1))
    y = np.random.default_rng(1).random((grid.n_owned, 4, 1))
    rf = pdeopt.ReducedFunctional(field, x, y)
    sample = rf.subsample(0.5, seed=1)
    direct = pdeopt.ReducedFunctional(field, x[:, sample.samples], y[:, sample.samples])
    assert sample.objective(rf.point) == pytest.approx(direct.objective(rf.point), rel=1e-12)


def test_subsampled_gauss_newton_model_trains_at_a_fraction_of_the_work():
    _, _, rf, theta = make_problem("parabolic")
    params = {"max_it": 8, "hessian": "gauss_newton"}
    full = TrustRegionNewtonCG(rf, params, preconditioner=LMVMPC(), monitor=False).solve(theta)
    c = full.counts
    assert c["work"] == c["forward"] + c["adjoint"] + 2 * c["hessian_actions"]
    sampled = TrustRegionNewtonCG(rf, {**params, "hessian_sample": 0.4},
                                  preconditioner=LMVMPC(), monitor=False).solve(theta)
    c = sampled.counts
    # the objective and the gradient stay those of the whole batch
    assert sampled.objective == pytest.approx(rf.objective(sampled.theta), rel=1e-14)
    assert sampled.objective < 0.5 * rf.objective(theta)
    assert c["hessian_actions"] == c["ksp_iterations"] > 0
    # a 2-of-5 sample's sweeps cost 0.4 of the batch's: one draw (a taped forward, and an
    # adjoint once it is used) per accepted iterate, 2 sweeps per action
    whole, draws = c["forward"] + c["adjoint"], 1 + sampled.iterations - c["rejected"]
    assert (whole + 0.4 * (2 * c["hessian_actions"] + 2 * draws - 1) <= c["work"]
            <= whole + 0.4 * (2 * c["hessian_actions"] + 2 * draws) + 1e-12)


def test_resume_without_checkpoint_is_an_error(tmp_path):
    _, _, rf, _ = make_problem("parabolic")
    with pytest.raises(pdeopt.InputError, match="no checkpoint"):
        TrustRegionNewtonCG(rf, checkpoint=tmp_path / "none", monitor=False).solve(resume=True)


def test_options_are_checked():
    _, _, rf, _ = make_problem("parabolic")
    with pytest.raises(pdeopt.OptionError, match="max_iters"):
        TrustRegionNewtonCG(rf, {"max_iters": 3})
    with pytest.raises(pdeopt.OptionError, match="ksp_bogus"):
        TrustRegionNewtonCG(rf, solver_parameters={"ksp_bogus": 1})
    with pytest.raises(pdeopt.OptionError, match="ksp_type"):
        TrustRegionNewtonCG(rf, solver_parameters={"ksp_type": "gmres"})
    for bad in (0.0, 1.5):
        with pytest.raises(pdeopt.OptionError, match="hessian_sample"):
            TrustRegionNewtonCG(rf, {"hessian_sample": bad})
    with pytest.raises(pdeopt.OptionError, match="hessian_sample=1"):
        TrustRegionNewtonCG(rf, {"hessian_sample": 0.5, "subproblem": "capped_cg"})
    with pytest.raises(pdeopt.OptionError, match="subsample"):
        TrustRegionNewtonCG(rosenbrock(), {"hessian_sample": 0.5})


def test_command_line_selects_the_subproblem_solver():
    _, _, rf, theta = make_problem("parabolic")
    PETSc.Options()["mytr_ksp_type"] = "nash"
    try:
        solver = TrustRegionNewtonCG(rf, {"max_it": 2}, options_prefix="mytr_", monitor=False)
        assert solver.ksp.getType() == "nash"
        assert solver.solve(theta).objective < rf.objective(theta)
    finally:
        PETSc.Options().delValue("mytr_ksp_type")


def test_counts_and_history_on_the_network(tmp_path):
    _, _, rf, theta = make_problem("parabolic")
    solver = TrustRegionNewtonCG(rf, {"max_it": 4}, monitor=False)
    result = solver.solve(theta)
    c = result.counts
    assert c["hessian_actions"] == c["ksp_iterations"] > 0
    # one trial forward per iteration, one adjoint at the start and per accepted step
    assert c["forward"] == result.iterations and c["adjoint"] == 1 + result.iterations - c["rejected"]
    assert [h["objective"] for h in result.history if h["accepted"]] == sorted(
        [h["objective"] for h in result.history if h["accepted"]], reverse=True)
    solver.write_history(result, tmp_path / "history.json")
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["reason"] == "DIVERGED_MAXITS" and len(saved["history"]) == 5


def test_capped_cg_solves_or_finds_negative_curvature():
    from pdeopt.solvers.capped_cg import capped_cg
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    g = rng.standard_normal(8)
    A = Q @ np.diag(np.logspace(0, 2, 8)) @ Q.T
    kind, d, Hd, its = capped_cg(lambda v: A @ v, g, eps=1e-8, zeta=1e-6)
    assert kind == "SOL" and np.allclose(Hd, A @ d)
    assert np.linalg.norm((A + 2e-8 * np.eye(8)) @ d + g) <= 1e-6 * np.linalg.norm(g)
    B = Q @ np.diag([-3.0, 1, 2, 3, 4, 5, 6, 7]) @ Q.T
    kind, d, Hd, its = capped_cg(lambda v: B @ v, g, eps=1e-3)
    assert kind == "NC" and d @ B @ d < -1e-3 * (d @ d) and np.allclose(Hd, B @ d)


@pytest.mark.parametrize("problem", [rosenbrock, saddle], ids=["rosenbrock", "saddle"])
def test_capped_cg_trust_region(problem):
    Jhat = problem()
    result = TrustRegionNewtonCG(Jhat, {"subproblem": "capped_cg", "max_it": 150},
                                 monitor=False).solve()
    assert result.converged, result.reason
    minimum = [1.0, 1.0] if problem is rosenbrock else [0.0, 1.0]
    assert np.allclose(np.abs(result.theta), minimum, atol=1e-6)
    if problem is saddle:
        assert "CAPPED_CG_NC" in {h["ksp_reason"] for h in result.history}


def test_capped_cg_stops_at_the_trust_region_boundary():
    from pdeopt.solvers.capped_cg import capped_cg
    A = np.diag(np.logspace(0, 2, 6))
    g = np.ones(6)
    kind, d, Hd, _ = capped_cg(lambda v: A @ v, g, eps=1e-8, zeta=1e-6, radius=0.1)
    assert kind == "BOUNDARY" and np.linalg.norm(d) == pytest.approx(0.1, rel=1e-12)
    assert np.allclose(Hd, A @ d) and g @ d < 0


def test_minimum_eigenvalue_oracle():
    from pdeopt.solvers.eigenvalue_oracle import minimum_eigenvalue_oracle
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    for lam_min, found in [(-1e-2, True), (-1e-4, False), (0.5, False)]:
        A = Q @ np.diag(np.r_[lam_min, np.linspace(1, 10, 39)]) @ Q.T
        oracle = minimum_eigenvalue_oracle(lambda v: A @ v, 40, eps=1e-3, max_it=40)
        assert oracle.negative_curvature is found
        if found:
            d = oracle.direction
            assert np.linalg.norm(d) == pytest.approx(1.0) and d @ A @ d <= -0.5e-3
            assert oracle.curvature == pytest.approx(d @ A @ d, rel=1e-10)
        else:
            assert oracle.bound_met and oracle.smallest_ritz_value >= lam_min - 1e-10


def test_capped_cg_variant_leaves_an_exact_saddle():
    """From (0.5, 0) CG never sees the y direction and plain TR stops at the saddle (0, 0);
    the oracle of the capped-CG variant finds the negative curvature and certifies a minimum."""
    start = np.array([0.5, 0.0])
    plain = TrustRegionNewtonCG(saddle(), {"gatol": 1e-10}, monitor=False).solve(start)
    assert plain.reason is TerminationReason.CONVERGED_GATOL
    assert np.allclose(plain.theta, 0.0, atol=1e-8)
    result = TrustRegionNewtonCG(saddle(), {"subproblem": "capped_cg", "gatol": 1e-10,
                                            "capped_cg_epsilon": 1e-3}, monitor=False).solve(start)
    assert result.reason is TerminationReason.CONVERGED_SECOND_ORDER, result.reason
    assert np.allclose(np.abs(result.theta), [0.0, 1.0], atol=1e-8)
    assert "ORACLE_NC" in {h["ksp_reason"] for h in result.history}


def test_oracle_stopped_early_is_first_order_only():
    result = TrustRegionNewtonCG(rosenbrock(), {"subproblem": "capped_cg", "max_it": 150,
                                                "capped_cg_epsilon": 1e-9, "oracle_max_it": 1},
                                 monitor=False).solve()
    assert result.reason is TerminationReason.CONVERGED_GATOL


def test_capped_cg_refuses_a_preconditioner():
    _, _, rf, _ = make_problem("parabolic")
    with pytest.raises(pdeopt.OptionError, match="Euclidean"):
        TrustRegionNewtonCG(rf, {"subproblem": "capped_cg"}, preconditioner=LMVMPC())
