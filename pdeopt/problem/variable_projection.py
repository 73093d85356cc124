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
implicit differentiation of :math:`\partial_w\hat J(\theta, w^*(\theta)) = 0`). The inner
problem belongs to the readout (:meth:`~pdeopt.model.readout.LinearReadout.optimal_weights`);
two losses:

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

from pdeopt.checks import integer, real
from pdeopt.errors import InputError
from pdeopt.model.readout import LinearReadout
from pdeopt.problem.array_functional import ArrayFunctional
from pdeopt.problem.counts import Counts
from pdeopt.problem.reduced_functional import ReducedFunctional

__all__ = ["ProjectedReducedFunctional"]


class ProjectedReducedFunctional(ArrayFunctional):
    r""":math:`J_p(\theta) = \min_w \hat J(\theta, w)` over the network controls :math:`\theta`.

    An :class:`~pdeopt.problem.array_functional.ArrayFunctional`, so any pdeopt solver
    minimises it (not subsampled: the weights are the whole batch's). The inner problem
    (:math:`w^*` and :math:`H_{ww}^{-1}`) is the readout's
    :meth:`~pdeopt.model.readout.LinearReadout.optimal_weights`.

    Parameters
    ----------
    Jhat
        A :class:`~pdeopt.problem.reduced_functional.ReducedFunctional` whose readout is a
        :class:`~pdeopt.model.readout.LinearReadout` (a
        :class:`~pdeopt.model.readout.ProbeRegression` or a
        :class:`~pdeopt.model.readout.PooledClassifier`); its regulariser's :math:`\alpha` also
        weighs the readout weights (and must be positive for the classifier).
    inner_tol, inner_max_it
        The classifier's Newton iteration stops at :math:`\|\partial_w\hat J\| \le`
        ``inner_tol``; not reaching it in ``inner_max_it`` iterations raises
        :class:`~pdeopt.errors.ConvergenceError`.
    """

    def __init__(self, Jhat: ReducedFunctional, inner_tol: float = 1e-12,
                 inner_max_it: int = 50):
        if not isinstance(Jhat, ReducedFunctional):
            raise InputError(f"variable projection takes a ReducedFunctional, got "
                             f"{type(Jhat).__name__}: the weights of an ensemble's batch would "
                             f"need every member's features.")
        readout = Jhat.model.readout
        if not isinstance(readout, LinearReadout):
            raise InputError(f"variable projection needs a readout linear in its weights, a "
                             f"LinearReadout (ProbeRegression or PooledClassifier), got "
                             f"{type(readout).__name__}; train that model with its "
                             f"ReducedFunctional instead.")
        self.Jhat, self.readout = Jhat, readout
        self.n = Jhat.model.network.layout.size
        self.alpha = Jhat.regularizer.alpha if Jhat.regularizer is not None else 0.0
        readout.check_alpha(self.alpha)
        self.inner_tol = real("ProjectedReducedFunctional", "inner_tol", inner_tol, low=0,
                              low_open=True)
        self.inner_max_it = integer("ProjectedReducedFunctional", "inner_max_it", inner_max_it,
                                    low=1)
        self.inner_iterations = self.feature_sweeps = 0
        self._theta = self._optimal = None

    @property
    def size(self) -> int:
        """The number of network controls."""
        return self.n

    @property
    def comm(self):
        """The full functional's communicator."""
        return self.Jhat.comm

    @property
    def counts(self) -> Counts:
        """The full functional's sweeps, with the untaped forward sweeps for the features."""
        return self.Jhat.counts + Counts.of_sweeps(forward=self.feature_sweeps)

    def fingerprint(self) -> dict:
        """The full functional's, marked projected."""
        return {"projected": True, **self.Jhat.fingerprint()}

    @property
    def point(self) -> np.ndarray:
        """The network part of the full functional's last point."""
        return self.Jhat.point[:self.n].copy()

    def weights(self, theta) -> np.ndarray:
        r"""The optimal readout controls :math:`w^*(\theta)` (flat, readout layout)."""
        return self._solve_weights(theta).w.copy()

    def full(self, theta) -> np.ndarray:
        r""":math:`(\theta, w^*(\theta))`, the controls of the full reduced functional."""
        w = self._solve_weights(theta).w
        return np.concatenate([np.asarray(theta, dtype=float), w])

    def _solve_weights(self, theta):
        """The readout's inner problem at ``theta`` (cached), warm-started at the last
        :math:`w^*`."""
        theta = self.check_point(theta, "the network controls")
        if self._theta is not None and np.array_equal(theta, self._theta):
            return self._optimal
        if theta.shape != (self.n,):
            raise InputError(f"the projected functional takes the {self.n} network controls, "
                             f"got shape {theta.shape}.")
        model = self.Jhat.model
        u = model.output(np.concatenate([theta, np.zeros(self.readout.layout.size)]), self.Jhat.x)
        self.feature_sweeps += 1
        start = None if self._optimal is None else self._optimal.w
        self._optimal = self.readout.optimal_weights(
            self.readout.features(u), self.Jhat.target, self.alpha, start=start,
            tol=self.inner_tol, max_it=self.inner_max_it)
        self.inner_iterations += self._optimal.iterations
        self._theta = theta.copy()
        return self._optimal

    def objective(self, theta) -> float:
        r""":math:`J_p(\theta)`."""
        return self.Jhat.objective(self.full(theta))

    def gradient(self, theta) -> np.ndarray:
        r""":math:`\nabla J_p(\theta) = \nabla_\theta\hat J(\theta, w^*)`."""
        return self.Jhat.gradient(self.full(theta))[:self.n]

    def _schur(self, action, theta, direction):
        full = self.full(theta)
        optimal = self._optimal
        d = np.concatenate([self.check_point(direction, "the direction"),
                            np.zeros(optimal.w.size)])
        h = action(full, d)
        z = optimal.hessian_solve(h[self.n:])  # H_ww^{-1} H_wθ d
        return h[:self.n] - action(full, np.concatenate([np.zeros(self.n), z]))[:self.n]

    def hessian_action(self, theta, direction) -> np.ndarray:
        r""":math:`(H_{\theta\theta} - H_{\theta w}H_{ww}^{-1}H_{w\theta})\,\dot\theta`."""
        return self._schur(self.Jhat.hessian_action, theta, direction)

    def gauss_newton_action(self, theta, direction) -> np.ndarray:
        """The same Schur complement of the Gauss-Newton Hessian (whose weight block is
        :math:`H_{ww}` too)."""
        return self._schur(self.Jhat.gauss_newton_action, theta, direction)
