"""Learned Lyapunov–Krasovskii functionals of the linear delay layer: the exact margin, the layer
matrix against the DelayScheme, the loss's exact derivatives, and a learned certificate."""

import numpy as np
import pytest
from mpi4py import MPI

import pdeopt
from pdeopt.analysis.lyapunov_krasovskii import cost_to_go, spectral_radii

EQ = pdeopt.LinearDelayEquation(0.5, 1.0)


def test_margin_is_the_first_imaginary_root():
    r"""At :math:`\tau_c` the characteristic function :math:`\lambda + a + be^{-\lambda\tau}`
    vanishes at :math:`\lambda = i\omega`; without delay or for :math:`a \ge |b|` the margin is
    0 or infinite."""
    tau = EQ.margin()
    w = np.sqrt(EQ.b ** 2 - EQ.a ** 2)
    assert abs(1j * w + EQ.a + EQ.b * np.exp(-1j * w * tau)) < 1e-12
    assert tau == pytest.approx(2.4184, abs=1e-4)
    assert pdeopt.LinearDelayEquation(-1.0, 0.5).margin() == 0.0
    assert pdeopt.LinearDelayEquation(1.0, 0.5).margin() == np.inf


def test_step_matrix_is_the_delay_scheme():
    """One layer of ``DelayScheme(LinearDelayLaw)`` with a delay between layers is the ring's
    matrix, and the discrete margin tends to the exact one as h falls."""
    ops = pdeopt.assemble_operators(pdeopt.PointDomain(comm=MPI.COMM_SELF))
    law = pdeopt.LinearDelayLaw(ops, EQ.a, EQ.b)
    h, M = 0.1, 6
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1, 5, M + 2))
    for tau in (0.0, 0.1, 0.37, 0.6):
        net = pdeopt.Network(pdeopt.DelayScheme(law, h, tau / h, learned=True, max_delay=M,
                                                history="input"),
                             channels=1, depth=1, lift=False, autonomous=True)
        _, traj = net.forward(np.array([tau]), X)
        ring = np.concatenate(traj.states[-1], axis=-1)[0]
        assert np.allclose(ring, X[0] @ EQ.step_matrix(h, tau, M + 2).T, rtol=0, atol=1e-14)
    margins = [EQ.discrete_margin(h, int(3.0 / h) + 2) / EQ.margin() for h in (0.2, 0.1, 0.05)]
    assert margins[0] < margins[1] < margins[2] < 1.0 and margins[2] > 0.97
    tau_h = EQ.discrete_margin(0.1, 32)
    assert spectral_radii(EQ, 0.1, np.array([tau_h - 1e-6, tau_h + 1e-6]), 32) == \
        pytest.approx([1.0, 1.0], abs=1e-6)


def test_cost_to_go_by_doubling():
    A = np.stack([EQ.step_matrix(0.1, tau, 8) for tau in (0.2, 0.55)])
    for K in (1, 6, 13):
        powers = [np.linalg.matrix_power(A[1], k) for k in range(K)]
        assert np.allclose(cost_to_go(A, 0.1, K)[1], 0.1 * sum(P.T @ P for P in powers),
                           rtol=1e-14, atol=1e-15)


def _loss(**kwargs):
    V = pdeopt.LyapunovKrasovskiiFunctional(0.2, 6, degree=2)
    rng = np.random.default_rng(3)
    return V, pdeopt.LyapunovKrasovskiiLoss(V, EQ, rng.uniform(0, V.max_tau, 9), **kwargs), rng


@pytest.mark.parametrize("mu", [0.0, 1.0])
def test_loss_derivatives(mu):
    """The gradient's Taylor remainder falls at rate 2; the loss is quadratic in the controls,
    so the second-order remainder is round-off at every step, and the Hessian is symmetric."""
    V, J, rng = _loss(defect_weight=mu)
    theta = V.initial_controls() + 0.1 * rng.standard_normal(V.size)
    check = pdeopt.taylor_check(J, theta, rng.standard_normal(V.size))
    assert check["R1"] >= 1.9, check["rates"]
    assert max(check["residuals"]["R2"]) < 1e-13 * max(check["residuals"]["R1"][0], 1.0)
    x, y = rng.standard_normal((2, V.size))
    assert x @ J.hessian_action(theta, y) == pytest.approx(y @ J.hessian_action(theta, x),
                                                           rel=1e-12)


def test_learned_functional_certifies_to_near_the_margin():
    """Trained by the trust region over delays up to 1.2 tau_c, V certifies decrease on every
    tested delay up to most of the layer's own margin, and nowhere past it (no quadratic
    functional can: rho(A) >= 1 there)."""
    h, M = 0.2, 14
    V = pdeopt.LyapunovKrasovskiiFunctional(h, M, degree=3)
    rng = np.random.default_rng(1)
    taus = np.sort(np.concatenate([rng.uniform(0, V.max_tau, 6 * M), h * np.arange(M + 1)]))
    J = pdeopt.LyapunovKrasovskiiLoss(V, EQ, taus, horizon=2 ** 12)
    result = pdeopt.TrustRegionNewtonCG(
        J, parameters={"max_it": 15, "gatol": 1e-14},
        preconditioner=pdeopt.LyapunovKrasovskiiPC(J),
        solver_parameters={"ksp_max_it": 1000}).solve()
    grid = np.arange(0.0, V.max_tau, 0.01)
    cert = pdeopt.certify(V, result.theta, EQ, grid, histories=48, steps=200)
    margin = EQ.discrete_margin(h, V.n)  # 0.906 of the exact margin at h = 0.2
    assert 0.85 * margin <= cert.certified_delay < margin, (cert.certified_delay, margin)
    assert not np.any(cert.certified[cert.spectral_radius >= 1.0])
    untrained = pdeopt.certify(V, V.initial_controls(), EQ, grid, histories=12, steps=50)
    assert untrained.certified_delay < 0.2 * EQ.margin()


def test_bad_input():
    V, J, rng = _loss()
    with pytest.raises(pdeopt.InputError, match="max_delay"):
        pdeopt.LyapunovKrasovskiiLoss(V, EQ, [0.5, 2.0])
    with pytest.raises(pdeopt.InputError, match="8 states"):
        V(V.initial_controls(), np.zeros((3, 5)), 0.3)
    with pytest.raises(pdeopt.InputError, match="positive definite"):
        pdeopt.LyapunovKrasovskiiLoss(V, EQ, [0.5], covariance=-np.eye(V.n))
    with pytest.raises(pdeopt.InputError, match="increase"):
        pdeopt.certify(V, V.initial_controls(), EQ, [0.4, 0.2])
    with pytest.raises(pdeopt.InputError, match="whole number"):
        pdeopt.LyapunovKrasovskiiFunctional(0.1, 2.5)
    with pytest.raises(pdeopt.InputError, match="finite vector"):
        J.objective(np.full(V.size, np.nan))
