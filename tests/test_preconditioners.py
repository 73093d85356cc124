"""The trust region's PETSc Python PCs: the same minimum, the operator they apply, their
nested options prefixes."""

import numpy as np
import pytest

from pdeopt import LMVMPC, LowRankPC, RegularizerPC, TrustRegionNewtonCG
from problems import make_problem


@pytest.mark.parametrize("make_pc", [lambda Jhat: RegularizerPC(Jhat.regularizer),
                                     lambda Jhat: LMVMPC(),
                                     lambda Jhat: LowRankPC(Jhat.regularizer, rank=8,
                                                            oversampling=4)],
                         ids=["regularizer", "lmvm", "low_rank"])
def test_preconditioners_reach_the_same_minimum(make_pc):
    _, _, Jhat, theta = make_problem("parabolic", channels=1, depth=1)
    params = {"gatol": 1e-9, "max_it": 100}
    plain = TrustRegionNewtonCG(Jhat, parameters=params).solve(theta)
    result = TrustRegionNewtonCG(Jhat, parameters=params,
                                 preconditioner=make_pc(Jhat)).solve(theta)
    assert result.converged, result.reason
    assert result.objective == pytest.approx(plain.objective, rel=1e-10)
    assert np.linalg.norm(result.theta - plain.theta) <= 1e-5 * np.linalg.norm(plain.theta)


def test_regularizer_pc_solves_the_regularizer_hessian():
    _, model, Jhat, theta = make_problem("parabolic")
    solver = TrustRegionNewtonCG(Jhat, preconditioner=RegularizerPC(Jhat.regularizer))
    pc = solver.subproblem.ksp.getPC()
    x, y = solver.H.createVecs()
    v = np.random.default_rng(0).standard_normal(Jhat.size)
    x.setArray(Jhat.regularizer.hessian_action(v)[slice(*x.getOwnershipRange())])
    pc.apply(x, y)
    assert np.allclose(y.getArray(), v[slice(*y.getOwnershipRange())], rtol=1e-10, atol=1e-12)


def test_low_rank_pc_captures_the_misfit_spectrum():
    """Sampling the whole space, the nonzero generalised eigenvalues of (H - H_R, H_R) are
    exact."""
    _, _, Jhat, theta = make_problem("parabolic", channels=1, depth=1)
    pc = LowRankPC(Jhat.regularizer, rank=Jhat.size, oversampling=0)
    TrustRegionNewtonCG(Jhat, preconditioner=pc)
    pc.accept(theta, Jhat.gradient(theta), Jhat)
    H = np.column_stack([Jhat.hessian_action(theta, e) for e in np.eye(Jhat.size)])
    HR = np.column_stack([Jhat.regularizer.hessian_action(e) for e in np.eye(Jhat.size)])
    lam = np.linalg.eigvals(np.linalg.solve(HR, H - HR)).real
    tol = 1e-6 * np.abs(lam).max()
    assert np.allclose(np.sort(pc.eigenvalues[np.abs(pc.eigenvalues) > tol]),
                       np.sort(lam[np.abs(lam) > tol]), rtol=1e-8, atol=1e-8 * tol)


@pytest.mark.parametrize("prefix", ["pdeopt_tr_", "other_tr_"])
def test_pc_options_nest_under_the_solver_prefix(petsc_option, prefix):
    _, _, Jhat, _ = make_problem("parabolic")
    petsc_option("pdeopt_tr_pc_lmvm_mat_lmvm_hist_size", 3)
    pc = LMVMPC()
    TrustRegionNewtonCG(Jhat, preconditioner=pc, options_prefix=prefix)
    assert pc.full_prefix == prefix + "pc_lmvm_"
    assert pc.history_size == (3 if prefix == "pdeopt_tr_" else 10)
