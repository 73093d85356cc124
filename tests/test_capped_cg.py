"""Capped CG, the minimum eigenvalue oracle, and the trust region that uses them."""

import numpy as np
import pytest

import pdeopt
from analytic import rosenbrock, saddle
from pdeopt import (CappedCGSubproblem, LMVMPC, SubsampledHessian, TerminationReason,
                    TrustRegionNewtonCG)
from pdeopt.solvers.capped_cg import capped_cg
from pdeopt.solvers.eigenvalue_oracle import minimum_eigenvalue_oracle
from problems import make_problem


def test_capped_cg_solves_or_finds_negative_curvature():
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


def test_capped_cg_stops_at_the_trust_region_boundary():
    A = np.diag(np.logspace(0, 2, 6))
    g = np.ones(6)
    kind, d, Hd, _ = capped_cg(lambda v: A @ v, g, eps=1e-8, zeta=1e-6, radius=0.1)
    assert kind == "BOUNDARY" and np.linalg.norm(d) == pytest.approx(0.1, rel=1e-12)
    assert np.allclose(Hd, A @ d) and g @ d < 0


def test_minimum_eigenvalue_oracle():
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


@pytest.mark.parametrize("problem", [rosenbrock, saddle], ids=["rosenbrock", "saddle"])
def test_capped_cg_trust_region(problem):
    result = TrustRegionNewtonCG(problem(), parameters={"max_it": 150},
                                 subproblem=CappedCGSubproblem()).solve()
    assert result.converged, result.reason
    minimum = [1.0, 1.0] if problem is rosenbrock else [0.0, 1.0]
    assert np.allclose(np.abs(result.theta), minimum, atol=1e-6)
    if problem is saddle:
        assert "CAPPED_CG_NC" in {h["ksp_reason"] for h in result.history}


def test_capped_cg_variant_leaves_an_exact_saddle():
    """From (0.5, 0) CG never sees the y direction and plain TR stops at the saddle (0, 0);
    the oracle of the capped-CG variant finds the negative curvature and certifies a minimum."""
    start = np.array([0.5, 0.0])
    plain = TrustRegionNewtonCG(saddle(), parameters={"gatol": 1e-10}).solve(start)
    assert plain.reason is TerminationReason.CONVERGED_GATOL
    assert np.allclose(plain.theta, 0.0, atol=1e-8)
    result = TrustRegionNewtonCG(saddle(), parameters={"gatol": 1e-10},
                                 subproblem=CappedCGSubproblem(epsilon=1e-3)).solve(start)
    assert result.reason is TerminationReason.CONVERGED_SECOND_ORDER, result.reason
    assert np.allclose(np.abs(result.theta), [0.0, 1.0], atol=1e-8)
    assert "ORACLE_NC" in {h["ksp_reason"] for h in result.history}


def test_oracle_stopped_early_is_first_order_only():
    result = TrustRegionNewtonCG(rosenbrock(), parameters={"max_it": 150},
                                 subproblem=CappedCGSubproblem(epsilon=1e-9,
                                                               oracle_max_it=1)).solve()
    assert result.reason is TerminationReason.CONVERGED_GATOL


@pytest.mark.parametrize("kwargs, match", [
    ({"preconditioner": LMVMPC()}, "Euclidean"),
    ({"solver_parameters": {"ksp_max_it": 5}}, "not a PETSc KSP"),
    ({"hessian": SubsampledHessian(0.5)}, "whole batch")],
    ids=["preconditioner", "ksp-options", "subsampled"])
def test_capped_cg_refuses_what_its_certificate_cannot_use(kwargs, match):
    Jhat = make_problem("parabolic")[2]
    with pytest.raises(pdeopt.OptionError, match=match):
        TrustRegionNewtonCG(Jhat, subproblem=CappedCGSubproblem(), **kwargs)


@pytest.mark.parametrize("kwargs", [{"epsilon": 0.0}, {"zeta": 1.0}, {"oracle_delta": 0.0},
                                    {"oracle_max_it": 0}, {"max_it": 0}])
def test_capped_cg_parameters_are_checked(kwargs):
    with pytest.raises(pdeopt.OptionError, match="CappedCGSubproblem"):
        CappedCGSubproblem(**kwargs)
