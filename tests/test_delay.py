"""Delay layers: exact derivatives for every delay, the learned delay, the torch twin, the
one-point domain and the input errors."""

import numpy as np
import pytest
import torch
from mpi4py import MPI

import pdeopt
from pdeopt.model.torch_twin import TorchTwin
from problems import assert_taylor_rates, digits_batch, relative_error

DELAYS = (0, 1, 3)
#: (delay in layers, learned?): the fixed delays and a learned one between layers 1 and 2.
CASES = [(m, False) for m in DELAYS] + [(1.45, True)]


def make_delay_problem(delay, learned=False, depth=5, channels=2, hidden=3, present=True,
                       seed=1):
    """``(grid, model, Jhat, theta)``: delay layers on the digits grid, a field misfit."""
    grid = pdeopt.PixelGrid(8)
    ops = pdeopt.assemble_operators(grid, basis=("I", "dx", "dy"))
    forcing = pdeopt.DelayedPerceptron(ops, pdeopt.Tanh(), hidden=hidden, present=present)
    scheme = pdeopt.DelayScheme(forcing, step=1.0 / depth, delay=delay, learned=learned,
                                max_delay=3.5 if learned else None)
    model = pdeopt.Model(pdeopt.Network(scheme, channels=channels, depth=depth),
                         pdeopt.FieldMisfit(ops, channels=channels))
    x, _ = digits_batch(grid, n=4)
    rng = np.random.default_rng(seed)
    target = 0.3 * rng.standard_normal((ops.n_owned, 4, channels))
    theta = model.initial_controls(seed=seed, scale=1.5)
    theta[model.layout.slice("opening.bias")] = 0.2 * rng.standard_normal(channels)
    reg = pdeopt.Regularizer(model, alpha=1e-2, beta=1e-2)
    return grid, model, pdeopt.ReducedFunctional(model, x, target, reg, theta=theta), theta


def _direction(Jhat, seed):
    return np.random.default_rng(seed).standard_normal(Jhat.size)


@pytest.mark.parametrize("delay, learned", CASES)
def test_taylor_at_taped_point(delay, learned):
    _, _, Jhat, theta = make_delay_problem(delay, learned)
    assert_taylor_rates(pdeopt.taylor_check(Jhat, theta, _direction(Jhat, 7)))


@pytest.mark.parametrize("delay, learned", CASES)
def test_taylor_after_reevaluation(delay, learned):
    _, _, Jhat, theta = make_delay_problem(delay, learned)
    new = theta + 0.3 * _direction(Jhat, 3) / np.sqrt(Jhat.size)
    if learned:
        new[Jhat.model.layout.slice("scheme.delay")] = 1.6 * Jhat.model.network.step
    assert Jhat.objective(new) != Jhat.objective(theta)
    assert_taylor_rates(pdeopt.taylor_check(Jhat, new, _direction(Jhat, 11)))


def test_taylor_in_the_delay_alone():
    """The derivative in tau by itself (steps within one interval between layers): the
    first-order remainder falls at rate 2, and the second-order one lies orders below it (its
    third-order term is at round-off within a few halvings, so a rate would measure noise)."""
    _, model, Jhat, theta = make_delay_problem(1.45, True)
    d = np.zeros(Jhat.size)
    d[model.layout.slice("scheme.delay")] = 1.0
    rates = pdeopt.taylor_check(Jhat, theta, d, size=0.1)
    assert rates["R1"] >= 1.9, rates["rates"]
    R1, R2 = rates["residuals"]["R1"], rates["residuals"]["R2"]
    assert R2[0] <= 1e-2 * R1[0] and R1[0] > 1e-7, (R1, R2)


@pytest.mark.parametrize("delay, learned", CASES)
def test_dot_test(delay, learned):
    _, model, Jhat, theta = make_delay_problem(delay, learned)
    net = model.network
    th = theta[:net.layout.size]
    lam = np.random.default_rng(6).standard_normal(model.output(theta, Jhat.x).shape)
    lhs, rhs = pdeopt.dot_test(net, th, Jhat.x, _direction(Jhat, 5)[:net.layout.size], lam)
    assert abs(lhs - rhs) <= 1e-12 * max(abs(lhs), 1.0), (lhs, rhs)


def test_hessian_is_symmetric_with_a_learned_delay():
    _, _, Jhat, theta = make_delay_problem(1.45, True)
    a, b = _direction(Jhat, 1), _direction(Jhat, 2)
    Ha, Hb = Jhat.hessian_action(theta, a), Jhat.hessian_action(theta, b)
    assert abs(b @ Ha - a @ Hb) <= 1e-10 * abs(b @ Ha)


@pytest.mark.parametrize("delay, learned", CASES)
def test_torch_twin(delay, learned):
    grid, model, Jhat, theta = make_delay_problem(delay, learned)
    twin = TorchTwin(model, grid, Jhat.regularizer)
    u = twin.images(model.output(theta, Jhat.x)).numpy()
    u_torch = twin.output(torch.tensor(theta), twin.images(Jhat.x)).numpy()
    assert np.max(np.abs(u - u_torch)) <= 1e-10 * max(1.0, np.max(np.abs(u_torch)))
    d = _direction(Jhat, 4)
    J, g, Hd = twin.derivatives(theta, twin.images(Jhat.x),
                                twin.images(Jhat.target), d)
    assert abs(Jhat.objective(theta) - J) <= 1e-12 * abs(J)
    assert relative_error(Jhat.gradient(theta), g) <= 1e-8
    assert relative_error(Jhat.hessian_action(theta, d), Hd) <= 1e-8


def test_zero_delay_is_the_euler_scheme():
    """m = 0 with F(v) alone and no output layer: the ResNet step, to round-off."""
    grid = pdeopt.PixelGrid(8)
    ops = pdeopt.assemble_operators(grid)
    C, N, h = 3, 4, 0.25
    delay = pdeopt.Network(pdeopt.DelayScheme(
        pdeopt.DelayedPerceptron(ops, pdeopt.Tanh(), present=False), step=h, delay=0),
        channels=C, depth=N)
    euler = pdeopt.Network(pdeopt.ForwardEulerScheme(ops, pdeopt.Tanh(), step=h),
                           channels=C, depth=N)
    theta = euler.initial_controls(np.random.default_rng(0), scale=2.0)
    ve, vd = euler.layout.views(theta), None
    theta_d = np.zeros(delay.layout.size)
    vd = delay.layout.views(theta_d)
    for a, b in (("opening.weight", "opening.weight"), ("opening.bias", "opening.bias"),
                 ("layers.weight", "layers.B"), ("layers.bias", "layers.b")):
        vd[b][...] = ve[a]
    ve["layers.bias"][...] = vd["layers.b"][...] = 0.1
    x, _ = digits_batch(grid, n=6)
    u_e, u_d = euler.forward(theta, x, store=False)[0], delay.forward(theta_d, x, store=False)[0]
    assert np.max(np.abs(u_e - u_d)) <= 1e-14 * np.max(np.abs(u_e))


def test_learned_delay_out_of_range_is_a_control_domain_error():
    _, model, Jhat, theta = make_delay_problem(1.45, True)
    bad = theta.copy()
    bad[model.layout.slice("scheme.delay")] = -0.01
    with pytest.raises(pdeopt.ControlDomainError, match="outside"):
        Jhat.objective(bad)
    bad[model.layout.slice("scheme.delay")] = 3.6 * model.network.step
    with pytest.raises(pdeopt.ControlDomainError, match="max_delay"):
        Jhat.objective(bad)


def test_a_regularizer_does_not_decay_the_delay():
    _, model, Jhat, theta = make_delay_problem(1.45, True)
    d = np.zeros(Jhat.size)
    d[model.layout.slice("scheme.delay")] = 1.0
    assert np.all(Jhat.regularizer.hessian_action(d) == 0.0)


def _forcing(ops=None):
    ops = ops or pdeopt.assemble_operators(pdeopt.PixelGrid(8), basis=("I",))
    return ops, pdeopt.DelayedPerceptron(ops, pdeopt.Tanh())


@pytest.mark.parametrize("kwargs, error, match", [
    ({"delay": -1}, pdeopt.InputError, "delay"),
    ({"delay": 1.5}, pdeopt.InputError, "learned=True"),
    ({"delay": 1, "learned": True}, pdeopt.InputError, "max_delay"),
    ({"delay": 3, "learned": True, "max_delay": 2}, pdeopt.InputError, r"\[0, max_delay"),
    ({"delay": 1, "history": "zero"}, pdeopt.OptionError, "constant"),
])
def test_bad_delays(kwargs, error, match):
    _, forcing = _forcing()
    with pytest.raises(error, match=match):
        pdeopt.DelayScheme(forcing, step=0.1, **kwargs)


def test_a_delay_longer_than_the_network():
    _, forcing = _forcing()
    with pytest.raises(pdeopt.InputError, match="not shorter than the network's 4 layers"):
        pdeopt.Network(pdeopt.DelayScheme(forcing, step=0.1, delay=4), channels=2, depth=4)
    scheme = pdeopt.DelayScheme(forcing, step=0.1, delay=1, learned=True, max_delay=4.5)
    with pytest.raises(pdeopt.InputError, match="max_delay"):
        pdeopt.Network(scheme, channels=2, depth=4)


def test_history_through_the_input():
    """Each sample its own history segment: the input carries the ring, oldest first; a block
    of the wrong shape is an InputError."""
    ops, forcing = _forcing()
    scheme = pdeopt.DelayScheme(forcing, step=0.1, delay=2, history="input")
    with pytest.raises(pdeopt.InputError, match="in_channels=6"):
        pdeopt.Network(scheme, channels=2, depth=4, in_channels=2, lift=False)
    net = pdeopt.Network(scheme, channels=2, depth=4, lift=False)
    assert net.c_in == 6 and "opening.weight" not in net.layout.names
    model = pdeopt.Model(net, pdeopt.FieldMisfit(ops, channels=2))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ops.n_owned, 3, 6))
    theta = model.initial_controls(seed=0)
    with pytest.raises(pdeopt.InputError, match="in_channels=6"):
        model.output(theta, x[..., :4])
    # a constant history given through the input is the constant history
    const = pdeopt.Network(pdeopt.DelayScheme(forcing, step=0.1, delay=2), channels=2,
                           depth=4, lift=False)
    u0 = x[..., :2]
    assert np.allclose(net.forward(theta[:net.layout.size], np.concatenate([u0] * 3, -1),
                                   store=False)[0],
                       const.forward(theta[:net.layout.size], u0, store=False)[0],
                       rtol=0, atol=1e-14)
    target = rng.standard_normal((ops.n_owned, 3, 2))
    Jhat = pdeopt.ReducedFunctional(model, x, target, None, theta=theta)
    assert_taylor_rates(pdeopt.taylor_check(Jhat, theta, _direction(Jhat, 2)))


def test_point_domain_neural_dde():
    """An autonomous learned law on one point (a neural DDE): shared controls, exact
    derivatives, and the identity as the only operator."""
    point = pdeopt.PointDomain(comm=MPI.COMM_SELF)
    ops = pdeopt.assemble_operators(point)
    assert ops.names == ("I",) and ops.n_owned == 1
    forcing = pdeopt.DelayedPerceptron(ops, pdeopt.Tanh(), hidden=8)
    scheme = pdeopt.DelayScheme(forcing, step=0.5, delay=2.5, learned=True, max_delay=4.0)
    net = pdeopt.Network(scheme, channels=1, depth=12, lift=False, autonomous=True)
    assert net.layout.names == ["forcing.A", "forcing.B", "forcing.b", "forcing.E",
                                "forcing.c", "scheme.delay"]
    assert net.layout.shapes[0] == (1, 8, 1)
    model = pdeopt.Model(net, pdeopt.FieldMisfit(ops, channels=1))
    rng = np.random.default_rng(3)
    x = 1.0 + 0.2 * rng.standard_normal((1, 7, 1))
    target = 1.0 + 0.2 * rng.standard_normal((1, 7, 1))
    theta = model.initial_controls(seed=2)
    Jhat = pdeopt.ReducedFunctional(model, x, target, pdeopt.Regularizer(model, 1e-3, 0.0),
                                    theta=theta)
    assert_taylor_rates(pdeopt.taylor_check(Jhat, theta, _direction(Jhat, 9)))


def test_point_domain_errors():
    if MPI.COMM_WORLD.size == 1:
        with pytest.raises(pdeopt.InputError, match="PointDomain"):
            pdeopt.assemble_operators(pdeopt.PointDomain(), basis=("I", "dx"))
    with pytest.raises(pdeopt.InputError, match="mpi4py communicator"):
        pdeopt.PointDomain(comm=1)


@pytest.mark.parallel(nprocs=2)
def test_point_domain_is_not_partitioned():
    with pytest.raises(pdeopt.InputError, match="ensemble"):
        pdeopt.PointDomain(comm=MPI.COMM_WORLD)


def test_one_law_at_two_delays():
    """A SumFunctional of two models with the same autonomous law at delays 1 and 3: its
    gradient is the sum of theirs, and its Taylor remainders fall at rates 2 and 3."""
    ops = pdeopt.assemble_operators(pdeopt.PointDomain(comm=MPI.COMM_SELF))
    forcing = pdeopt.DelayedPerceptron(ops, pdeopt.Tanh(), hidden=5)
    rng = np.random.default_rng(4)
    x = 1.0 + 0.3 * rng.standard_normal((1, 6, 1))
    parts = []
    for m in (1, 3):
        net = pdeopt.Network(pdeopt.DelayScheme(forcing, step=0.5, delay=m), channels=1,
                             depth=6, lift=False, autonomous=True)
        model = pdeopt.Model(net, pdeopt.FieldMisfit(ops, channels=1))
        parts.append(pdeopt.ReducedFunctional(model, x, x + 0.1, None,
                                              theta=model.initial_controls(seed=1)))
    Jhat = pdeopt.SumFunctional(parts)
    theta = parts[0].point
    assert np.allclose(Jhat.gradient(theta), parts[0].gradient(theta) + parts[1].gradient(theta),
                       rtol=0, atol=1e-15)
    assert_taylor_rates(pdeopt.taylor_check(Jhat, theta, _direction(Jhat, 3)))
    with pytest.raises(pdeopt.InputError, match="share one control vector"):
        pdeopt.SumFunctional([parts[0], make_delay_problem(0)[2]])


def test_hybrid_law_on_a_mesh():
    """Known diffusion plus a learned pointwise reaction of (u, v): exact derivatives."""
    grid = pdeopt.PixelGrid(6, comm=MPI.COMM_SELF)
    diffusion = pdeopt.HutchinsonLaw(pdeopt.assemble_operators(grid, basis=("I", "laplace")),
                                     diffusivity=0.05, rate=0.0)
    pointwise = pdeopt.assemble_operators(grid, basis=("I",))
    law = pdeopt.HybridDelayLaw(diffusion, pdeopt.DelayedPerceptron(pointwise, pdeopt.Tanh(),
                                                                    hidden=4))
    net = pdeopt.Network(pdeopt.DelayScheme(law, step=0.1, delay=2, history="input"),
                         channels=1, depth=5, lift=False, autonomous=True)
    model = pdeopt.Model(net, pdeopt.FieldMisfit(pointwise, channels=1))
    rng = np.random.default_rng(5)
    x = 1.0 + 0.2 * rng.standard_normal((pointwise.n_owned, 3, 3))
    Jhat = pdeopt.ReducedFunctional(model, x, 1.0 + 0.1 * rng.standard_normal(
        (pointwise.n_owned, 3, 1)), None, theta=model.initial_controls(seed=3))
    assert_taylor_rates(pdeopt.taylor_check(Jhat, Jhat.point, _direction(Jhat, 6)))
