r"""Variable projection: the readout weights eliminated, the trust region sees the layers only.

For a readout linear in its weights :math:`w = (W, c)`, with features :math:`\tilde F(\theta) =
[F(\theta), \mathbf 1]` and logits (or predictions) :math:`\tilde F\tilde W`, the projected
functional is :math:`J_p(\theta) = \hat J(\theta, w^*(\theta))` with
:math:`w^*(\theta) = \arg\min_w \hat J(\theta, w)`, and because
:math:`\partial_w\hat J(\theta, w^*) = 0` (Newman, Ruthotto, Hart & van Bloemen Waanders 2021),

.. math::

    \nabla J_p = \nabla_\theta\hat J(\theta, w^*), \qquad
    \nabla^2 J_p = H_{\theta\theta} - H_{\theta w} H_{ww}^{-1} H_{w\theta},

the Schur complement of the full Hessian at :math:`(\theta, w^*)` (the second identity by
implicit differentiation of :math:`\partial_w\hat J(\theta, w^*(\theta)) = 0`). Two losses:

- least squares (:class:`~pdeopt.model.readout.ProbeRegression`),
  :math:`\hat J = \frac{1}{2B}\|\tilde F \tilde W - Y\|_F^2 + \frac\alpha2\|w\|^2 + R'(\theta)`:
  :math:`\tilde W^* = (\tilde F^T\tilde F/B + \alpha I)^{-1}\tilde F^TY/B` in closed form and
  :math:`H_{ww} = (\tilde F^T\tilde F/B + \alpha I) \otimes I_K`;
- softmax cross-entropy (:class:`~pdeopt.model.readout.PooledClassifier`), strictly convex in
  :math:`w` for :math:`\alpha > 0`: :math:`w^*` by Newton's method with an Armijo backtracking
  line search, warm-started at the previous :math:`w^*`, to :math:`\|\partial_w\hat J\| \le`
  ``inner_tol``, with the dense Hessian

  .. math::

      H_{ww} = \frac1B\sum_b \tilde f_b\tilde f_b^T \otimes \big(\operatorname{diag}p_b
      - p_bp_b^T\big) + \alpha I

  (:math:`p_b` the class probabilities), factored by Cholesky.

A projected Hessian action is two full Hessian actions and one small dense solve; finding
:math:`w^*` at a new :math:`\theta` costs one untaped forward sweep (for the features) before
the taped one.
"""

import numpy as np
import scipy.linalg as sla

from pdeopt.errors import ConvergenceError, InputError
from pdeopt.model.readout import PooledClassifier, ProbeRegression
from pdeopt.problem.reduced_functional import ReducedFunctional

__all__ = ["ProjectedReducedFunctional"]


class ProjectedReducedFunctional:
    r""":math:`J_p(\theta) = \min_w \hat J(\theta, w)` over the network controls :math:`\theta`.

    Offers the array interface of :class:`~pdeopt.problem.reduced_functional.ReducedFunctional`
    (``objective``, ``gradient``, ``hessian_action``, ``gauss_newton_action``, ``size``,
    ``comm``, ``point``, ``counts``), so any pdeopt solver minimises it.

    Parameters
    ----------
    Jhat
        A :class:`~pdeopt.problem.reduced_functional.ReducedFunctional` whose readout is a
        :class:`~pdeopt.model.readout.ProbeRegression` or a
        :class:`~pdeopt.model.readout.PooledClassifier`; its regulariser's :math:`\alpha` also
        weighs the readout weights (and must be positive for the classifier).
    inner_tol, inner_max_it
        The classifier's Newton iteration stops at :math:`\|\partial_w\hat J\| \le`
        ``inner_tol``; not reaching it in ``inner_max_it`` iterations raises
        :class:`~pdeopt.errors.ConvergenceError`.
    """

    def __init__(self, Jhat, inner_tol: float = 1e-12, inner_max_it: int = 50):
        if not isinstance(Jhat, ReducedFunctional):
            raise InputError(f"variable projection takes a ReducedFunctional, got "
                             f"{type(Jhat).__name__}: the weights of an ensemble's batch would "
                             f"need every member's features.")
        readout = Jhat.model.readout
        if not isinstance(readout, (ProbeRegression, PooledClassifier)):
            raise InputError(f"variable projection needs a readout linear in its weights "
                             f"(ProbeRegression or PooledClassifier), got "
                             f"{type(readout).__name__}.")
        self.Jhat, self.readout = Jhat, readout
        self.n = Jhat.model.network.layout.size
        self.alpha = Jhat.regularizer.alpha if Jhat.regularizer is not None else 0.0
        self.least_squares = isinstance(readout, ProbeRegression)
        if not self.least_squares and self.alpha <= 0:
            raise InputError("the classifier's inner problem needs alpha > 0 in the regulariser "
                             "(without it the optimal weights need not exist).")
        self.inner_tol, self.inner_max_it = float(inner_tol), int(inner_max_it)
        self.inner_iterations = self.feature_sweeps = 0
        self._theta = self._w = self._factor = None

    @property
    def size(self) -> int:
        return self.n

    @property
    def comm(self):
        return self.Jhat.comm

    @property
    def counts(self):
        """The full functional's sweeps, with the untaped forward sweeps for the features."""
        counts = dict(self.Jhat.counts)
        counts["forward"] += self.feature_sweeps
        return counts

    @property
    def point(self) -> np.ndarray:
        return self.Jhat.point[:self.n].copy()

    def weights(self, theta) -> np.ndarray:
        r"""The optimal readout controls :math:`w^*(\theta)` (flat, readout layout)."""
        self._solve_weights(theta)
        return self._w.copy()

    def full(self, theta) -> np.ndarray:
        r""":math:`(\theta, w^*(\theta))`, the controls of the full reduced functional."""
        self._solve_weights(theta)
        return np.concatenate([np.asarray(theta, dtype=float), self._w])

    def _solve_weights(self, theta):
        theta = np.asarray(theta, dtype=float)
        if self._theta is not None and np.array_equal(theta, self._theta):
            return
        if theta.shape != (self.n,):
            raise InputError(f"the projected functional takes the {self.n} network controls, "
                             f"got shape {theta.shape}.")
        model = self.Jhat.model
        u = model.output(np.concatenate([theta, np.zeros(self.readout.layout.size)]), self.Jhat.x)
        self.feature_sweeps += 1
        Ft = self.readout.features(u)
        Ft = np.hstack([Ft, np.ones((Ft.shape[0], 1))])
        if self.least_squares:
            G = Ft.T @ Ft / len(Ft) + self.alpha * np.eye(Ft.shape[1])
            Wt = np.linalg.solve(G, Ft.T @ self.Jhat.target / len(Ft))      # (QC + 1, K)
            self._factor = G
        else:
            start = self._unpack(self._w) if self._w is not None else None
            Wt, self._factor = self._newton(Ft, start)
        self._theta = theta.copy()
        self._w = self._pack(Wt)

    # -- the classifier's inner problem ----------------------------------------------------------
    def _inner(self, Ft, Wt):
        """Inner objective, gradient ``(QC + 1, K)`` and class probabilities at ``Wt``."""
        ell = Ft @ Wt
        ell -= ell.max(axis=1, keepdims=True)
        e = np.exp(ell)
        Z = e.sum(axis=1, keepdims=True)
        p = e / Z
        B, labels = len(Ft), self.Jhat.target
        phi = np.sum(np.log(Z[:, 0]) - ell[np.arange(B), labels]) / B \
            + 0.5 * self.alpha * np.sum(Wt * Wt)
        r = p.copy()
        r[np.arange(B), labels] -= 1.0
        return phi, Ft.T @ r / B + self.alpha * Wt, p

    def _inner_hessian(self, Ft, p):
        """:math:`H_{ww}`, rows and columns ordered as ``Wt.ravel()``."""
        B, A = Ft.shape
        K = p.shape[1]
        H = np.zeros((A, K, A, K))
        for k in range(K):  # the diag(p) part: one weighted Gram matrix per class
            H[:, k, :, k] = (Ft * p[:, k:k + 1]).T @ Ft
        V = (Ft[:, :, None] * p[:, None, :]).reshape(B, A * K)
        H = H.reshape(A * K, A * K) - V.T @ V
        H /= B
        H[np.diag_indices_from(H)] += self.alpha
        return H

    def _newton(self, Ft, Wt):
        """Newton's method with Armijo backtracking; returns :math:`\tilde W^*` and the
        Cholesky factor of :math:`H_{ww}` there."""
        K = self.readout.K
        Wt = np.zeros((Ft.shape[1], K)) if Wt is None else Wt
        phi, g, p = self._inner(Ft, Wt)
        for it in range(self.inner_max_it + 1):
            factor = sla.cho_factor(self._inner_hessian(Ft, p))
            if np.linalg.norm(g) <= self.inner_tol:
                self.inner_iterations += it
                return Wt, factor
            if it == self.inner_max_it:
                break
            step = -sla.cho_solve(factor, g.ravel()).reshape(g.shape)
            slope, t = float(np.sum(g * step)), 1.0
            roundoff = 10 * np.finfo(float).eps * abs(phi)  # near w*, phi changes by round-off
            while True:
                phi_t, g_t, p_t = self._inner(Ft, Wt + t * step)
                if phi_t <= phi + 1e-4 * t * slope + roundoff or t < 1e-10:
                    break
                t *= 0.5
            Wt, phi, g, p = Wt + t * step, phi_t, g_t, p_t
        raise ConvergenceError(
            f"the classifier's inner Newton iteration reached |grad| = {np.linalg.norm(g):.3e}, "
            f"not inner_tol = {self.inner_tol:.1e}, in {self.inner_max_it} iterations; raise "
            f"inner_max_it or inner_tol, or alpha (now {self.alpha:g}).")

    def _solve_ww(self, R):
        """:math:`H_{ww}^{-1}` applied to ``R`` ``(QC + 1, K)``."""
        if self.least_squares:
            return np.linalg.solve(self._factor, R)
        return sla.cho_solve(self._factor, R.ravel()).reshape(R.shape)

    def _pack(self, Wt):
        """Readout controls from the stacked ``[W^T; c^T]`` ``(QC + 1, K)``."""
        w = np.zeros(self.readout.layout.size)
        v = self.readout.layout.views(w)
        v["readout.weight"][...] = Wt[:-1].T
        v["readout.bias"][...] = Wt[-1]
        return w

    def _unpack(self, w):
        v = self.readout.layout.views(w)
        return np.vstack([v["readout.weight"].T, v["readout.bias"][None, :]])

    def objective(self, theta) -> float:
        r""":math:`J_p(\theta)`."""
        return self.Jhat.objective(self.full(theta))

    def gradient(self, theta) -> np.ndarray:
        r""":math:`\nabla J_p(\theta) = \nabla_\theta\hat J(\theta, w^*)`."""
        return self.Jhat.gradient(self.full(theta))[:self.n]

    def _schur(self, action, theta, direction):
        full = self.full(theta)
        d = np.concatenate([np.asarray(direction, dtype=float), np.zeros(self._w.size)])
        h = action(full, d)
        z = self._pack(self._solve_ww(self._unpack(h[self.n:])))  # H_ww^{-1} H_wθ d
        return h[:self.n] - action(full, np.concatenate([np.zeros(self.n), z]))[:self.n]

    def hessian_action(self, theta, direction) -> np.ndarray:
        r""":math:`(H_{\theta\theta} - H_{\theta w}H_{ww}^{-1}H_{w\theta})\,\dot\theta`."""
        return self._schur(self.Jhat.hessian_action, theta, direction)

    def gauss_newton_action(self, theta, direction) -> np.ndarray:
        """The same Schur complement of the Gauss-Newton Hessian (whose weight block is
        :math:`H_{ww}` too)."""
        return self._schur(self.Jhat.gauss_newton_action, theta, direction)
