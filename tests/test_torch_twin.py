"""The torch twin reproduces the network, and autograd reproduces pyadjoint's derivatives."""

import numpy as np
import torch

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


def test_gauss_newton_product(scheme):
    """pdeopt's Gauss-Newton action (TLM + adjoint sweep) against forward- and reverse-mode
    autograd of the logits."""
    grid, model, rf, theta = make_problem(scheme)
    twin = TorchTwin(model, grid, rf.regularizer)
    d = np.random.default_rng(5).standard_normal(rf.size)
    Gd = twin.gauss_newton_product(theta, twin.images(rf.x), d)
    assert _rel(rf.gauss_newton_action(theta, d), Gd) <= 1e-8
