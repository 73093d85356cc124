"""Exact first and second derivatives of every scheme: Taylor tests and the dot test."""

import numpy as np

from problems import assert_taylor_rates, make_problem
from pdeopt import taylor_check, dot_test


def _direction(n, seed):
    return np.random.default_rng(seed).standard_normal(n)


def test_taylor_at_taped_point(scheme):
    _, _, Jhat, theta = make_problem(scheme)
    rates = taylor_check(Jhat, theta, _direction(Jhat.size, 7))
    assert rates["R0"] > 0.9
    assert_taylor_rates(rates)


def test_taylor_after_reevaluation(scheme):
    """The tape re-run at new controls gives the derivatives there, not at the taped point."""
    _, _, Jhat, theta = make_problem(scheme)
    new = theta + 0.3 * _direction(Jhat.size, 3) / np.sqrt(Jhat.size)
    J_new = Jhat.objective(new)
    assert J_new != Jhat.objective(theta)
    rates = taylor_check(Jhat, new, _direction(Jhat.size, 11))
    assert_taylor_rates(rates)


def test_tangent_linear_adjoint_duality(scheme):
    _, model, Jhat, theta = make_problem(scheme)
    net = model.network
    th = theta[:net.layout.size]
    th_dot = _direction(net.layout.size, 5)
    uN = model.output(theta, Jhat.x)
    lam = np.random.default_rng(6).standard_normal(uN.shape)
    lhs, rhs = dot_test(net, th, Jhat.x, th_dot, lam)
    assert abs(lhs - rhs) <= 1e-12 * max(abs(lhs), 1.0), (lhs, rhs)


def test_hessian_is_symmetric(scheme):
    _, _, Jhat, theta = make_problem(scheme)
    a, b = _direction(Jhat.size, 1), _direction(Jhat.size, 2)
    Ha, Hb = Jhat.hessian_action(theta, a), Jhat.hessian_action(theta, b)
    assert abs(b @ Ha - a @ Hb) <= 1e-10 * abs(b @ Ha)


def test_hessian_action_reuses_forward_and_adjoint():
    _, _, Jhat, theta = make_problem("parabolic")
    Jhat.gradient(theta)
    before = Jhat.counts
    for seed in range(3):
        Jhat.hessian_action(theta, _direction(Jhat.size, seed))
    assert Jhat.counts.forward == before.forward
    assert Jhat.counts.adjoint == before.adjoint
    assert Jhat.counts.soa == before.soa + 3


def test_nonlinear_opening_layer():
    """u_0 = sigma(K_0 x + b_0): exact derivatives, including its second-order term."""
    _, model, Jhat, theta = make_problem("parabolic", opening_activation="tanh")
    rates = taylor_check(Jhat, theta, _direction(Jhat.size, 8))
    assert_taylor_rates(rates)
    net = model.network
    th_dot = _direction(net.layout.size, 5)
    lam = np.random.default_rng(6).standard_normal(model.output(theta, Jhat.x).shape)
    lhs, rhs = dot_test(net, theta[:net.layout.size], Jhat.x, th_dot, lam)
    assert abs(lhs - rhs) <= 1e-12 * max(abs(lhs), 1.0), (lhs, rhs)
