r"""Capped conjugate gradients (Royer, O'Neill & Wright, Math. Program. 2020, Alg. 1).

CG on the shifted system :math:`\bar H d = -g`, :math:`\bar H = H + 2\epsilon I`, which either
returns an approximate solution (``"SOL"``, :math:`\|\bar H d + g\| \le \hat\zeta\|g\|`) or a
direction of curvature below :math:`-\epsilon`, :math:`d^T H d < -\epsilon\|d\|^2` (``"NC"``): when
an iterate or a search direction shows it, or, once the residual has not decreased at the rate
CG guarantees on a matrix with eigenvalues above :math:`\epsilon` (the *cap*), as the difference
of two iterates. With :math:`M` the largest :math:`\|Hp\|/\|p\|` met so far,

.. math::

    \kappa = \frac{M + 2\epsilon}{\epsilon},\quad \hat\zeta = \frac{\zeta}{3\kappa},\quad
    \tau = \frac{\sqrt\kappa}{\sqrt\kappa + 1},\quad T = \frac{4\kappa^4}{(1-\sqrt\tau)^2},

and the cap is :math:`\|r_j\| > \sqrt T\,\tau^{j/2}\|r_0\|`. :math:`M` is updated from the search
directions only (the paper also uses :math:`\|Hy_j\|` and :math:`\|Hr_j\|`, which cost products).
Given a radius :math:`\Delta`, an iterate leaving :math:`\|d\| \le \Delta` is cut at the
boundary (``"BOUNDARY"``), as in the trust-region Newton-CG of Curtis, Robinson, Royer & Wright
(2021).
"""

import numpy as np

__all__ = ["capped_cg"]


def _parameters(M, eps, zeta):
    kappa = (M + 2 * eps) / eps
    tau = np.sqrt(kappa) / (np.sqrt(kappa) + 1)
    return zeta / (3 * kappa), tau, 4 * kappa**4 / (1 - np.sqrt(tau)) ** 2


def _to_boundary(y, p, radius):
    r""":math:`\tau \ge 0` with :math:`\|y + \tau p\| = \Delta` (for :math:`\|y\| \le \Delta`)."""
    pp, yp, yy = p @ p, y @ p, y @ y
    return (-yp + np.sqrt(max(yp * yp + pp * (radius * radius - yy), 0.0))) / pp


def capped_cg(H, g, eps, zeta=0.5, M=0.0, max_it=100, radius=None):
    r"""Solve :math:`(H + 2\epsilon I)d = -g` or find negative curvature.

    Parameters
    ----------
    H
        ``H(v)``: the Hessian action on a vector.
    g
        The right-hand side's negative (the gradient), nonzero.
    eps
        :math:`\epsilon > 0`.
    zeta
        :math:`\zeta \in (0, 1)`, the relative accuracy before the :math:`1/3\kappa` factor.
    M
        A lower estimate of :math:`\|H\|`.
    max_it
        Iterations before returning the current iterate as ``"SOL"``.
    radius
        A trust-region radius :math:`\Delta`: an iterate that would leave the ball
        :math:`\|d\| \le \Delta` is cut at its boundary and returned as ``"BOUNDARY"``
        (Steihaug's exit; the iterates' norms increase along CG).

    Returns
    -------
    kind, d, Hd, iterations
        ``"SOL"``, ``"BOUNDARY"`` or ``"NC"``, the direction, :math:`Hd` (no product needed)
        and the number of Hessian actions.
    """
    zhat, tau, T = _parameters(M, eps, zeta)
    r0 = np.linalg.norm(g)
    y, Hbar_y = np.zeros_like(g), np.zeros_like(g)
    r, p = g.copy(), -g
    Hp = H(p)
    actions = 1
    M = max(M, np.linalg.norm(Hp) / np.linalg.norm(p))
    zhat, tau, T = _parameters(M, eps, zeta)
    Hbar_p = Hp + 2 * eps * p
    if p @ Hbar_p < eps * (p @ p):
        return "NC", p, Hp, actions
    ys, Hbar_ys = [y], [Hbar_y]
    j = 0
    while True:
        rr = r @ r
        alpha = rr / (p @ Hbar_p)
        if radius is not None and np.linalg.norm(y + alpha * p) >= radius:
            tau = _to_boundary(y, p, radius)
            d, Hbar_d = y + tau * p, Hbar_y + tau * Hbar_p
            return "BOUNDARY", d, Hbar_d - 2 * eps * d, actions
        y = y + alpha * p
        Hbar_y = Hbar_y + alpha * Hbar_p
        r = r + alpha * Hbar_p
        p = -r + (r @ r) / rr * p
        j += 1
        Hp = H(p)
        actions += 1
        norm_p = np.linalg.norm(p)
        if norm_p and np.linalg.norm(Hp) > M * norm_p:
            M = np.linalg.norm(Hp) / norm_p
            zhat, tau, T = _parameters(M, eps, zeta)
        Hbar_p = Hp + 2 * eps * p
        ys.append(y)
        Hbar_ys.append(Hbar_y)
        if y @ Hbar_y < eps * (y @ y):
            return "NC", y, Hbar_y - 2 * eps * y, actions
        if np.linalg.norm(r) <= zhat * r0 or j >= max_it:
            return "SOL", y, Hbar_y - 2 * eps * y, actions
        if p @ Hbar_p < eps * (p @ p):
            return "NC", p, Hp, actions
        if np.linalg.norm(r) > np.sqrt(T) * tau ** (j / 2) * r0:
            alpha = (r @ r) / (p @ Hbar_p)
            y_next, Hbar_next = y + alpha * p, Hbar_y + alpha * Hbar_p
            for yi, Hbar_yi in zip(ys[:-1], Hbar_ys[:-1]):
                d, Hbar_d = y_next - yi, Hbar_next - Hbar_yi
                if d @ Hbar_d < eps * (d @ d):
                    return "NC", d, Hbar_d - 2 * eps * d, actions
            return "SOL", y, Hbar_y - 2 * eps * y, actions  # round-off: no such pair
