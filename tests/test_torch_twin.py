"""The torch twin reproduces the network, and autograd reproduces pyadjoint's derivatives."""

import numpy as np
import torch

import pdeopt
from pdeopt.model.torch_twin import TorchTwin
from problems import make_problem, make_regression, relative_error


def test_forward_output(scheme):
    grid, model, Jhat, theta = make_problem(scheme)
    twin = TorchTwin(model, grid, Jhat.regularizer)
    u_pdeopt = twin.images(model.output(theta, Jhat.x)).numpy()
    u_torch = twin.output(torch.tensor(theta), twin.images(Jhat.x)).numpy()
    assert np.max(np.abs(u_pdeopt - u_torch)) <= 1e-10 * max(1.0, np.max(np.abs(u_torch)))


def _check_derivatives(scheme, **kwargs):
    grid, model, Jhat, theta = make_problem(scheme, **kwargs)
    twin = TorchTwin(model, grid, Jhat.regularizer)
    d = np.random.default_rng(4).standard_normal(Jhat.size)
    J, g, Hd = twin.derivatives(theta, twin.images(Jhat.x), torch.tensor(Jhat.target), d)
    assert abs(Jhat.objective(theta) - J) <= 1e-12 * abs(J)
    assert relative_error(Jhat.gradient(theta), g) <= 1e-8
    assert relative_error(Jhat.hessian_action(theta, d), Hd) <= 1e-8


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
    grid, model, Jhat, theta = make_problem(scheme)
    twin = TorchTwin(model, grid, Jhat.regularizer)
    d = np.random.default_rng(5).standard_normal(Jhat.size)
    Gd = twin.gauss_newton_product(theta, twin.images(Jhat.x), d)
    assert relative_error(Jhat.gauss_newton_action(theta, d), Gd) <= 1e-8


def test_probe_regression():
    grid, data, Jhat = make_regression(n=6, channels=2, depth=2)
    model, reg = Jhat.model, Jhat.regularizer
    theta = model.initial_controls(seed=2)
    theta[model.network.layout.size:] = np.random.default_rng(3).standard_normal(
        model.readout.layout.size)
    twin = TorchTwin(model, grid, reg)
    d = np.random.default_rng(4).standard_normal(Jhat.size)
    J, g, Hd = twin.derivatives(theta, twin.images(Jhat.x), torch.tensor(data.targets), d)
    assert abs(Jhat.objective(theta) - J) <= 1e-12 * abs(J)
    assert relative_error(Jhat.gradient(theta), g) <= 1e-8
    assert relative_error(Jhat.hessian_action(theta, d), Hd) <= 1e-8


def test_dense_and_axis_wise_operators_agree():
    """Large grids take the axis-wise products: the same network as the dense operators."""
    grid, model, Jhat, theta = make_problem("parabolic")
    dense = TorchTwin(model, grid, Jhat.regularizer)
    axis_wise = TorchTwin(model, grid, Jhat.regularizer)
    axis_wise.D = None
    x, y, d = dense.images(Jhat.x), torch.tensor(Jhat.target), np.ones(Jhat.size)
    for a, b in zip(dense.derivatives(theta, x, y, d), axis_wise.derivatives(theta, x, y, d)):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-14)
