"""The torch twin reproduces the network, and autograd reproduces pyadjoint's derivatives."""

import numpy as np
import torch

import pdeopt
from conftest import make_problem
from pdeopt.model.torch_twin import TorchTwin


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_forward_output(scheme):
    grid, model, rf, theta = make_problem(scheme)
    twin = TorchTwin(model, grid, rf.regularizer)
    u_pdeopt = twin.images(model.output(theta, rf.x)).numpy()
    u_torch = twin.output(torch.tensor(theta), twin.images(rf.x)).numpy()
    assert np.max(np.abs(u_pdeopt - u_torch)) <= 1e-10 * max(1.0, np.max(np.abs(u_torch)))


def _check_derivatives(scheme, **kwargs):
    grid, model, rf, theta = make_problem(scheme, **kwargs)
    twin = TorchTwin(model, grid, rf.regularizer)
    d = np.random.default_rng(4).standard_normal(rf.size)
    J, g, Hd = twin.derivatives(theta, twin.images(rf.x), torch.tensor(rf.target), d)
    assert abs(rf.objective(theta) - J) <= 1e-12 * abs(J)
    assert _rel(rf.gradient(theta), g) <= 1e-8
    assert _rel(rf.hessian_action(theta, d), Hd) <= 1e-8


def test_gradient_and_hessian_vector_product(scheme):
    _check_derivatives(scheme)


def test_nonlinear_opening_layer():
    _check_derivatives("parabolic", opening_activation="softplus")


def test_shift_basis():
    """The same network in the orthonormal shift coordinates."""
    _check_derivatives("parabolic", basis=tuple(pdeopt.GRID_SHIFTS))


def test_gauss_newton_product(scheme):
    """pdeopt's Gauss-Newton action (TLM + adjoint sweep) against forward- and reverse-mode
    autograd of the logits."""
    grid, model, rf, theta = make_problem(scheme)
    twin = TorchTwin(model, grid, rf.regularizer)
    d = np.random.default_rng(5).standard_normal(rf.size)
    Gd = twin.gauss_newton_product(theta, twin.images(rf.x), d)
    assert _rel(rf.gauss_newton_action(theta, d), Gd) <= 1e-8


def test_probe_regression():
    grid = pdeopt.PixelGrid(8)
    probes = [(1, 1), (1, 6), (6, 1), (6, 6), (3, 4)]
    data = pdeopt.diffusion_reaction_data(grid, 6, probes, seed=1)
    ops = pdeopt.assemble_operators(grid)
    model = pdeopt.Model(pdeopt.Network(pdeopt.ParabolicScheme(ops, pdeopt.Tanh(), step=0.5),
                                        channels=2, depth=2),
                         pdeopt.ProbeRegression(grid, 2, probes, len(probes)))
    reg = pdeopt.Regularizer(model, alpha=1e-3, beta=1e-2)
    theta = model.initial_controls(seed=2)
    theta[model.network.layout.size:] = np.random.default_rng(3).standard_normal(
        model.readout.layout.size)
    rf = pdeopt.ReducedFunctional(model, data.x, data.targets, reg, theta=theta)
    twin = TorchTwin(model, grid, reg)
    d = np.random.default_rng(4).standard_normal(rf.size)
    J, g, Hd = twin.derivatives(theta, twin.images(rf.x), torch.tensor(data.targets), d)
    assert abs(rf.objective(theta) - J) <= 1e-12 * abs(J)
    assert _rel(rf.gradient(theta), g) <= 1e-8
    assert _rel(rf.hessian_action(theta, d), Hd) <= 1e-8


def test_dense_and_axis_wise_operators_agree():
    """Large grids take the axis-wise products: the same network as the dense operators."""
    grid, model, rf, theta = make_problem("parabolic")
    dense = TorchTwin(model, grid, rf.regularizer)
    axis_wise = TorchTwin(model, grid, rf.regularizer)
    axis_wise.D = None
    x, y, d = dense.images(rf.x), torch.tensor(rf.target), np.ones(rf.size)
    for a, b in zip(dense.derivatives(theta, x, y, d), axis_wise.derivatives(theta, x, y, d)):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-14)
