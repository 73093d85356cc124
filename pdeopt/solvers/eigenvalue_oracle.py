r"""A minimum eigenvalue oracle: Lanczos from a random start (Royer, O'Neill & Wright 2020, §3).

For a symmetric :math:`H` available through its action and a tolerance :math:`\epsilon > 0`,
the oracle either returns a unit direction of curvature :math:`d^T H d \le -\epsilon/2`, or
certifies :math:`\lambda_{\min}(H) \ge -\epsilon`. The certificate is probabilistic: Lanczos
started from a vector uniform on the sphere finds a Ritz value below :math:`-\epsilon/2` within

.. math::

    j_{\max} = \min\Big(n,\ 1 + \Big\lceil \tfrac12 \ln\big(2.75\, n/\delta^2\big)
    \sqrt{U_H/\epsilon}\, \Big\rceil\Big)

iterations with probability at least :math:`1 - \delta` whenever
:math:`\lambda_{\min}(H) < -\epsilon` (Kuczyński & Woźniakowski 1992), :math:`U_H \ge \|H\|`.
Here :math:`U_H` is the largest Ritz value magnitude met so far, updated as Lanczos runs, and
the iterations are also capped by ``max_it``; the result says how many ran and whether they
reached :math:`j_{\max}`. The Lanczos basis is fully reorthogonalised (the controls are a short
replicated vector; the Hessian actions are the cost).
"""

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["minimum_eigenvalue_oracle", "OracleResult"]


@dataclass
class OracleResult:
    r"""What the oracle found.

    Attributes
    ----------
    negative_curvature
        ``True``: ``direction`` has :math:`d^Td = 1`, :math:`d^THd =` ``curvature``
        :math:`\le -\epsilon/2`. ``False``: no such direction in ``iterations`` Lanczos steps,
        ``bound_met`` telling whether they reached :math:`j_{\max}` (or exhausted the space).
    """

    negative_curvature: bool
    direction: np.ndarray | None
    curvature: float
    smallest_ritz_value: float
    iterations: int
    bound_met: bool


def _iteration_bound(n, delta, U, eps):
    return min(n, 1 + math.ceil(0.5 * math.log(2.75 * n / delta**2) * math.sqrt(max(U, eps) / eps)))


def minimum_eigenvalue_oracle(H, n: int, eps: float, seed: int = 0, delta: float = 0.01,
                              max_it: int = 100) -> OracleResult:
    r"""Find :math:`d` with :math:`d^THd \le -\epsilon/2`, or certify
    :math:`\lambda_{\min} \ge -\epsilon`.

    Parameters
    ----------
    H
        ``H(v)``: the symmetric matrix's action on a vector of length ``n``.
    n
        The dimension.
    eps
        :math:`\epsilon > 0`.
    seed
        Seeds the random start (the same on every rank: the vectors are replicated).
    delta
        :math:`\delta \in (0, 1)`: the certificate fails with probability at most
        :math:`\delta`.
    max_it
        The most Lanczos steps (Hessian actions).
    """
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(n)
    v /= np.linalg.norm(v)
    V, HV, alphas, betas = [v], [], [], []
    U, theta_min = 0.0, np.inf
    for j in range(1, min(n, max_it) + 1):
        Hv = H(V[-1])
        HV.append(Hv)
        alphas.append(float(V[-1] @ Hv))
        T = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        ritz, vecs = np.linalg.eigh(T)
        theta_min, U = float(ritz[0]), max(U, float(np.abs(ritz).max()))
        if theta_min <= -eps / 2:
            s = vecs[:, 0]
            d = np.array(V).T @ s
            Hd = np.array(HV).T @ s
            norm = np.linalg.norm(d)
            return OracleResult(True, d / norm, float(d @ Hd) / norm**2, theta_min, j, False)
        if j >= _iteration_bound(n, delta, U, eps):
            return OracleResult(False, None, np.nan, theta_min, j, True)
        w = Hv - alphas[-1] * V[-1] - (betas[-1] * V[-2] if betas else 0.0)
        Q = np.array(V)
        w -= Q.T @ (Q @ w)  # full reorthogonalisation, twice is enough
        w -= Q.T @ (Q @ w)
        beta = float(np.linalg.norm(w))
        if beta <= 1e-12 * max(U, 1.0):  # an invariant subspace: its Ritz values are exact
            return OracleResult(False, None, np.nan, theta_min, j, True)
        betas.append(beta)
        V.append(w / beta)
    return OracleResult(False, None, np.nan, theta_min, min(n, max_it), min(n, max_it) >= n)
