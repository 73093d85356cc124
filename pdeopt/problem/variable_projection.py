r"""Variable projection: the readout weights of a least-squares loss eliminated in closed form.

For a readout linear in its weights :math:`w = (W, c)`, with features :math:`\tilde F(\theta) =
[F(\theta), \mathbf 1]` and targets :math:`Y`,

.. math::

    \hat J(\theta, w) = \frac{1}{2B}\|\tilde F \tilde W - Y\|_F^2 + \frac\alpha2\|w\|^2 + R'(\theta),
    \qquad \tilde W^*(\theta) = \Big(\frac{\tilde F^T\tilde F}{B} + \alpha I\Big)^{-1}
    \frac{\tilde F^T Y}{B},

and the projected functional :math:`J_p(\theta) = \hat J(\theta, w^*(\theta))` has, because
:math:`\partial_w\hat J(\theta, w^*) = 0` (Newman, Ruthotto, Hart & van Bloemen Waanders 2021),

.. math::

    \nabla J_p = \nabla_\theta\hat J(\theta, w^*), \qquad
    \nabla^2 J_p = H_{\theta\theta} - H_{\theta w} H_{ww}^{-1} H_{w\theta},

the Schur complement of the full Hessian at :math:`(\theta, w^*)`, with
:math:`H_{ww} = (\tilde F^T\tilde F/B + \alpha I) \otimes I_K` known in closed form. A projected
Hessian action is two full Hessian actions and one small dense solve; finding :math:`w^*` at a
new :math:`\theta` costs one untaped forward sweep (for the features) before the taped one.
"""

import numpy as np

from pdeopt.errors import InputError
from pdeopt.model.readout import ProbeRegression

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
        :class:`~pdeopt.model.readout.ProbeRegression`; its regulariser's :math:`\alpha` also
        weighs the readout weights.
    """

    def __init__(self, Jhat):
        readout = Jhat.model.readout
        if not isinstance(readout, ProbeRegression):
            raise InputError(f"variable projection needs a readout linear in its weights with a "
                             f"least-squares loss (ProbeRegression), got {type(readout).__name__}.")
        self.Jhat, self.readout = Jhat, readout
        self.n = Jhat.model.network.layout.size
        self.alpha = Jhat.regularizer.alpha if Jhat.regularizer is not None else 0.0
        self._theta = self._w = self._G = None

    @property
    def size(self) -> int:
        return self.n

    @property
    def comm(self):
        return self.Jhat.comm

    @property
    def counts(self):
        return self.Jhat.counts

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
        F = self.readout.features(u)
        B = F.shape[0]
        Ft = np.hstack([F, np.ones((B, 1))])
        G = Ft.T @ Ft / B + self.alpha * np.eye(Ft.shape[1])
        Wt = np.linalg.solve(G, Ft.T @ self.Jhat.target / B)      # (QC + 1, K)
        self._theta, self._G = theta.copy(), G
        self._w = self._pack(Wt)

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
        z = self._pack(np.linalg.solve(self._G, self._unpack(h[self.n:])))  # H_ww^{-1} H_wθ d
        return h[:self.n] - action(full, np.concatenate([np.zeros(self.n), z]))[:self.n]

    def hessian_action(self, theta, direction) -> np.ndarray:
        r""":math:`(H_{\theta\theta} - H_{\theta w}H_{ww}^{-1}H_{w\theta})\,\dot\theta`."""
        return self._schur(self.Jhat.hessian_action, theta, direction)

    def gauss_newton_action(self, theta, direction) -> np.ndarray:
        """The same Schur complement of the Gauss-Newton Hessian (whose weight block is
        :math:`H_{ww}` too)."""
        return self._schur(self.Jhat.gauss_newton_action, theta, direction)
