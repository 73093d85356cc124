"""Exact first and second derivatives of every scheme: Taylor tests and the dot test."""

import numpy as np

from conftest import make_problem
from pdeopt import taylor_check, dot_test


def _direction(n, seed):
    return np.random.default_rng(seed).standard_normal(n)


def test_taylor_at_taped_point(scheme):
    _, _, rf, theta = make_problem(scheme)
    rates = taylor_check(rf, theta, _direction(rf.size, 7))
    assert rates["R0"] > 0.9
    assert rates["R1"] >= 1.9, rates["rates"]["R1"]
    assert rates["R2"] >= 2.9, rates["rates"]["R2"]


def test_taylor_after_reevaluation(scheme):
    """The tape re-run at new controls gives the derivatives there, not at the taped point."""
    _, _, rf, theta = make_problem(scheme)
    new = theta + 0.3 * _direction(rf.size, 3) / np.sqrt(rf.size)
    J_new = rf.objective(new)
    assert J_new != rf.objective(theta)
    rates = taylor_check(rf, new, _direction(rf.size, 11))
    assert rates["R1"] >= 1.9, rates["rates"]["R1"]
    assert rates["R2"] >= 2.9, rates["rates"]["R2"]


def test_tangent_linear_adjoint_duality(scheme):
    _, model, rf, theta = make_problem(scheme)
    net = model.network
    th = theta[:net.layout.size]
    th_dot = _direction(net.layout.size, 5)
    uN = model.output(theta, rf.x)
    lam = np.random.default_rng(6).standard_normal(uN.shape)
    lhs, rhs = dot_test(net, th, rf.x, th_dot, lam)
    assert abs(lhs - rhs) <= 1e-12 * max(abs(lhs), 1.0), (lhs, rhs)


def test_hessian_is_symmetric(scheme):
    _, _, rf, theta = make_problem(scheme)
    a, b = _direction(rf.size, 1), _direction(rf.size, 2)
    Ha, Hb = rf.hessian_action(theta, a), rf.hessian_action(theta, b)
    assert abs(b @ Ha - a @ Hb) <= 1e-10 * abs(b @ Ha)


def test_hessian_action_reuses_forward_and_adjoint():
    _, _, rf, theta = make_problem("parabolic")
    rf.gradient(theta)
    before = dict(rf.counts)
    for seed in range(3):
        rf.hessian_action(theta, _direction(rf.size, seed))
    assert rf.counts["forward"] == before["forward"]
    assert rf.counts["adjoint"] == before["adjoint"]
    assert rf.counts["soa"] == before["soa"] + 3


def test_nonlinear_opening_layer():
    """u_0 = sigma(K_0 x + b_0): exact derivatives, including its second-order term."""
    _, model, rf, theta = make_problem("parabolic", opening_activation="tanh")
    rates = taylor_check(rf, theta, _direction(rf.size, 8))
    assert rates["R1"] >= 1.9, rates["rates"]["R1"]
    assert rates["R2"] >= 2.9, rates["rates"]["R2"]
    net = model.network
    th_dot = _direction(net.layout.size, 5)
    lam = np.random.default_rng(6).standard_normal(model.output(theta, rf.x).shape)
    lhs, rhs = dot_test(net, theta[:net.layout.size], rf.x, th_dot, lam)
    assert abs(lhs - rhs) <= 1e-12 * max(abs(lhs), 1.0), (lhs, rhs)
