"""The PDE-surrogate regression task: Firedrake data, the probe readout, variable projection."""

import firedrake as fd
import numpy as np
import pytest

import pdeopt
from problems import PROBES, assert_taylor_rates, make_problem, make_regression


def test_data_solve_the_diffusion_reaction_equation():
    grid = pdeopt.PixelGrid(8)
    data = pdeopt.diffusion_reaction_data(grid, 3, PROBES, seed=2, diffusivity=0.1, reaction=2.0)
    f, u = fd.Function(grid.V), fd.Function(grid.V)
    f.dat.data[:] = data.x[:, 1, 0]
    v = fd.TestFunction(grid.V)
    fd.solve((0.1 * fd.inner(fd.grad(u), fd.grad(v)) + 2.0 * u * v - f * v) * fd.dx == 0, u)
    assert np.allclose(grid.to_image(u.dat.data_ro[:, None])[0], data.solutions[1], atol=1e-12)
    assert np.array_equal(data.targets[1], data.solutions[1][tuple(np.array(PROBES).T)])


def test_bad_targets_are_rejected():
    _, data, Jhat = make_regression(n=4)
    with pytest.raises(pdeopt.InputError, match="targets"):
        pdeopt.ReducedFunctional(Jhat.model, data.x, data.targets[:, :3], Jhat.regularizer)


def test_probe_readout_derivatives():
    _, _, Jhat = make_regression()
    theta = Jhat.point + 0.1 * np.random.default_rng(2).standard_normal(Jhat.size)
    rates = pdeopt.taylor_check(Jhat, theta, np.random.default_rng(3).standard_normal(Jhat.size))
    assert_taylor_rates(rates)


def test_projected_functional_is_exact():
    _, _, Jhat = make_regression()
    P = pdeopt.ProjectedReducedFunctional(Jhat)
    theta = Jhat.point[:P.size]
    # the weights are optimal: the full gradient vanishes in them
    g = Jhat.gradient(P.full(theta))
    assert np.abs(g[P.size:]).max() <= 1e-12 * np.abs(g).max()
    rates = pdeopt.taylor_check(P, theta, np.random.default_rng(4).standard_normal(P.size))
    assert_taylor_rates(rates)
    a, b = np.random.default_rng(5).standard_normal((2, P.size))
    Ha, Hb = P.hessian_action(theta, a), P.hessian_action(theta, b)
    assert abs(b @ Ha - a @ Hb) <= 1e-10 * abs(b @ Ha)
    Ga = P.gauss_newton_action(theta, a)
    assert a @ Ga > 0


def test_projected_cross_entropy_is_exact():
    """The classifier's weights by Newton to 1e-12; derivatives by implicit differentiation."""
    _, _, Jhat, theta = make_problem("parabolic")
    P = pdeopt.ProjectedReducedFunctional(Jhat)
    theta = theta[:P.size]
    g = Jhat.gradient(P.full(theta))
    assert np.linalg.norm(g[P.size:]) <= 1e-11
    assert P.objective(theta) < Jhat.objective(np.concatenate([theta, P.weights(theta) + 1e-3]))
    rates = pdeopt.taylor_check(P, theta, np.random.default_rng(4).standard_normal(P.size))
    assert_taylor_rates(rates)
    a, b = np.random.default_rng(5).standard_normal((2, P.size))
    Ha, Hb = P.hessian_action(theta, a), P.hessian_action(theta, b)
    assert abs(b @ Ha - a @ Hb) <= 1e-10 * abs(b @ Ha)
    assert a @ P.gauss_newton_action(theta, a) > 0


def test_projection_needs_a_linear_readout_and_alpha():
    _, _, Jhat, _ = make_problem("parabolic", regularize=False)
    with pytest.raises(pdeopt.InputError, match="alpha > 0"):
        pdeopt.ProjectedReducedFunctional(Jhat)
    grid = pdeopt.PixelGrid(8)
    ops = pdeopt.assemble_operators(grid)
    network = pdeopt.Network(pdeopt.ParabolicScheme(ops, pdeopt.Tanh(), step=0.5), channels=1,
                             depth=1)
    model = pdeopt.Model(network, pdeopt.FieldMisfit(ops, channels=1))
    x = np.random.default_rng(0).random((grid.n_owned, 2, 1))
    Jhat = pdeopt.ReducedFunctional(model, x, x.copy())
    with pytest.raises(pdeopt.InputError, match="ProbeRegression or PooledClassifier"):
        pdeopt.ProjectedReducedFunctional(Jhat)
    _, model, Jhat, theta = make_problem("parabolic")
    ensemble = fd.Ensemble(grid.comm, grid.comm.size)
    ens = pdeopt.EnsembleReducedFunctional(model, Jhat.x, Jhat.target, Jhat.regularizer, ensemble,
                                           theta=theta)
    with pytest.raises(pdeopt.InputError, match="every member"):
        pdeopt.ProjectedReducedFunctional(ens)


def test_projection_trains_further_in_the_same_iterations():
    _, _, Jhat = make_regression(n=40)
    P = pdeopt.ProjectedReducedFunctional(Jhat)

    def solve(Jhat, theta):
        return pdeopt.TrustRegionNewtonCG(Jhat, parameters={"max_it": 10},
                                          hessian=pdeopt.GaussNewtonHessian()).solve(theta)

    full, projected = solve(Jhat, Jhat.point), solve(P, Jhat.point[:P.size])
    assert projected.objective < full.objective
