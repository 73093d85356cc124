"""Delay data: pdeopt's method of steps against jitcdde, and the Hutchinson equation's
delay-induced Hopf bifurcation."""

import numpy as np
import pytest
from mpi4py import MPI

import pdeopt

jitcdde = pytest.importorskip("jitcdde")


def mackey_glass_reference(tau, times, x0=1.2):
    """Mackey-Glass by jitcdde (adaptive Bogacki-Shampine with Hermite interpolation of the
    past, tolerances 1e-10); the first delay interval, where the history's kink at t = 0
    propagates, in blind steps of 1e-3."""
    y, t = jitcdde.y, jitcdde.t
    dde = jitcdde.jitcdde([0.2 * y(0, t - tau) / (1 + y(0, t - tau) ** 10) - 0.1 * y(0)],
                          max_delay=tau, verbose=False)
    dde.constant_past([x0])
    dde.set_integration_parameters(atol=1e-10, rtol=1e-10)
    dde.compile_C(verbose=False)
    dde.integrate_blindly(tau, 1e-3)
    return np.array([dde.integrate(T)[0] for T in times])


def test_mackey_glass_converges_at_first_order_to_jitcdde():
    ops = pdeopt.assemble_operators(pdeopt.PointDomain(comm=MPI.COMM_SELF))
    law = pdeopt.MackeyGlassLaw(ops)
    tau, T = 17.0, 40.0
    times = np.arange(tau + 1.0, T + 0.5, 1.0)
    reference = mackey_glass_reference(tau, times)
    errors = []
    for h in (0.1, 0.05, 0.025):
        u = pdeopt.integrate_delay(law, np.full((1, 1, 1), 1.2), h, tau, T)[:, 0, 0, 0]
        errors.append(np.max(np.abs(u[np.rint(times / h).astype(int)] - reference)))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 0.9) & (orders < 1.1)), (errors, orders)


def _hutchinson_growth(tau, r=1.0, h=0.05, T=30.0):
    grid = pdeopt.PixelGrid(6, comm=MPI.COMM_SELF)
    ops = pdeopt.assemble_operators(grid, basis=("I", "laplace"))
    law = pdeopt.HutchinsonLaw(ops, diffusivity=0.01, rate=r)
    X = np.linspace(0.0, 1.0, 6)
    bump = np.cos(np.pi * X)[None, :] + 1.0  # a constant and a cosine mode
    u0 = 1.0 + 0.05 * grid.to_field(bump[None].repeat(6, 0)[None].reshape(1, 6, 6))
    u = pdeopt.integrate_delay(law, u0[:, :, None], h, tau, T)
    deviation = np.max(np.abs(u - 1.0), axis=(1, 2, 3))
    window = int(round(2 * tau / h))
    return deviation[-window:].max() / deviation[:window].max()


def test_hutchinson_loses_stability_at_r_tau_pi_over_2():
    """r tau below pi/2 (1.2, 1.4): the perturbation of u = 1 decays; above (1.75, 1.9): it
    grows into an oscillation."""
    assert _hutchinson_growth(1.2) < 0.5 and _hutchinson_growth(1.4) < 1.0
    assert _hutchinson_growth(1.75) > 1.0 and _hutchinson_growth(1.9) > 2.0


@pytest.mark.parametrize("kwargs, match", [
    ({"step": 0.3}, "whole multiples"),
    ({"u0": np.ones((2, 1, 1))}, "n_owned=1"),
    ({"history": np.ones((3, 1, 1, 1))}, "the 20 states before u0"),
])
def test_bad_integrations(kwargs, match):
    ops = pdeopt.assemble_operators(pdeopt.PointDomain(comm=MPI.COMM_SELF))
    args = {"law": pdeopt.MackeyGlassLaw(ops), "u0": np.ones((1, 1, 1)), "step": 0.5,
            "delay": 10.0, "final_time": 20.0} | kwargs
    with pytest.raises(pdeopt.InputError, match=match):
        pdeopt.integrate_delay(**args)
