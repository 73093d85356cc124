"""Derivative checks: Taylor remainders and the tangent-linear/adjoint dot test."""

import numpy as np
from mpi4py import MPI


__all__ = ["taylor_check", "dot_test"]


def taylor_check(Jhat, theta, direction, size: float = 0.1, halvings: int = 10,
                 window: int = 2) -> dict:
    r"""Taylor remainders of the array functional ``Jhat`` at ``theta`` along ``direction``.

    With :math:`d` scaled to norm ``size`` and :math:`\epsilon_i = 2^{-i}`,
    :math:`i = 0, \dots,` ``halvings``:

    .. math::

        R_0 = |\hat J(\theta+\epsilon d) - \hat J(\theta)| = O(\epsilon),\quad
        R_1 = |\dots - \epsilon\nabla\hat J\cdot d| = O(\epsilon^2),\quad
        R_2 = |\dots - \tfrac12\epsilon^2 d^T\nabla^2\hat J d| = O(\epsilon^3).

    Remainders below :math:`10^{-13}\max(1, |\hat J|)` are round-off and dropped. The rate
    reported for each remainder is the smallest over the ``window`` smallest remaining
    :math:`\epsilon` (the asymptotic regime); larger :math:`\epsilon` may be pre-asymptotic.

    Returns
    -------
    dict
        ``{"R0": rate, "R1": rate, "R2": rate, "eps": [...], "residuals": {...},
        "rates": {...}}``.
    """
    theta = np.asarray(theta, dtype=float)
    d = np.asarray(direction, dtype=float)
    d = d * (size / np.linalg.norm(d))
    J0 = Jhat.objective(theta)
    dJ = float(Jhat.gradient(theta) @ d)
    d2J = float(Jhat.hessian_action(theta, d) @ d)
    eps = 2.0 ** -np.arange(halvings + 1)
    values = np.array([Jhat.objective(theta + e * d) for e in eps])
    Jhat.objective(theta)  # leave the functional at theta
    residuals = {"R0": np.abs(values - J0), "R1": np.abs(values - J0 - eps * dJ),
                 "R2": np.abs(values - J0 - eps * dJ - 0.5 * eps**2 * d2J)}
    floor = 1e-13 * max(1.0, abs(J0))
    out = {"eps": eps.tolist(), "residuals": {}, "rates": {}}
    for key, r in residuals.items():
        keep = r > floor
        rates = np.log2(r[keep][:-1] / r[keep][1:]) if keep.sum() > 1 else np.array([np.nan])
        out["residuals"][key], out["rates"][key] = r.tolist(), rates.tolist()
        out[key] = float(np.min(rates[-window:]))
    return out


def dot_test(network, theta, x, theta_dot, lam_N) -> tuple:
    r"""The duality of the tangent-linear and adjoint sweeps of ``network``.

    Returns :math:`(\langle \lambda_N, \dot u_N\rangle, \langle \bar\theta, \dot\theta\rangle)`,
    equal to round-off when :math:`\bar\theta = (\partial u_N/\partial\theta)^T\lambda_N`.
    """
    _, traj = network.forward(theta, x)
    uN_dot, _ = network.tlm(theta, traj, theta_dot)
    grad, _ = network.adjoint(theta, traj, lam_N)
    lhs = network.comm.allreduce(float(np.sum(lam_N * uN_dot)), op=MPI.SUM)
    return lhs, float(np.dot(grad, theta_dot))
