r"""The Tikhonov regulariser, smooth in the layer index (Haber & Ruthotto 2017)."""

import numpy as np

from pdeopt.errors import InputError

__all__ = ["Regularizer"]


class Regularizer:
    r""":math:`R(\theta) = \frac\alpha2\|\theta\|^2
    + \frac{\beta}{2h}\sum_{k}\|\theta_{k+1}-\theta_k\|^2`.

    The time-smoothness term acts on the layer controls (``layers.*`` blocks, stacked over
    k); the weight decay on every control but the scheme's physical parameters (``scheme.*``
    blocks, a learned delay), which it would bias towards zero. :math:`R =
    \tfrac12\theta^T H_R\theta` is quadratic, :math:`H_R = \alpha P + \tfrac\beta h
    (\Delta_k \otimes I)` with :math:`P` the projection on the decayed entries and
    :math:`\Delta_k` the graph Laplacian of the path :math:`0, \dots, N-1`: SPD (on the
    decayed entries) and block-tridiagonal in k.

    Parameters
    ----------
    model
        The :class:`~pdeopt.model.model.Model` whose controls (``model.layout``) are
        regularised; :math:`h` is its network's time step.
    alpha, beta
        Weights of the decay and of the smoothness in the layer index.
    """

    def __init__(self, model, alpha: float = 1e-4, beta: float = 1e-3):
        if not alpha >= 0 or not beta >= 0:
            raise InputError(f"Regularizer needs alpha >= 0 and beta >= 0; got alpha={alpha}, "
                             f"beta={beta}.")
        self.layout, self.h = model.layout, float(model.network.step)
        self.alpha, self.beta = float(alpha), float(beta)
        self.layer_blocks = [n for n in self.layout.names if n.startswith("layers.")]
        #: 1 on the decayed entries, 0 on the ``scheme.*`` blocks.
        self.decayed = np.ones(self.layout.size)
        for name in self.layout.names:
            if name.startswith("scheme."):
                self.decayed[self.layout.slice(name)] = 0.0

    def hessian_action(self, theta_dot: np.ndarray) -> np.ndarray:
        r""":math:`H_R\dot\theta`."""
        out = self.alpha * self.decayed * theta_dot
        v, o = self.layout.views(theta_dot), self.layout.views(out)
        c = self.beta / self.h
        for name in self.layer_blocks:
            X, Y = v[name], o[name]
            if X.shape[0] > 1:
                d = X[1:] - X[:-1]
                Y[:-1] -= c * d
                Y[1:] += c * d
        return out

    def hessian_coo(self):
        """:math:`H_R` as global ``(rows, cols, values)`` triplets, for assembly by PETSc."""
        n = self.layout.size
        rows, cols, vals = [np.arange(n)], [np.arange(n)], [self.alpha * self.decayed]
        c = self.beta / self.h
        for name in self.layer_blocks:
            shape = self.layout.shapes[self.layout.names.index(name)]
            N, m = shape[0], int(np.prod(shape[1:]))
            if N < 2:
                continue
            idx = self.layout.slice(name).start + np.arange(N * m).reshape(N, m)
            lo, hi = idx[:-1].ravel(), idx[1:].ravel()
            # c (theta_{k+1} - theta_k)^2 / 2 per edge: +c on both diagonals, -c off them.
            rows += [lo, hi, lo, hi]
            cols += [lo, hi, hi, lo]
            vals += [np.full(lo.size, c), np.full(lo.size, c), np.full(lo.size, -c),
                     np.full(lo.size, -c)]
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)

    def value(self, theta: np.ndarray) -> float:
        r""":math:`R(\theta) = \tfrac12\theta^T H_R\theta`."""
        return 0.5 * float(np.dot(theta, self.hessian_action(theta)))

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        r""":math:`\nabla R(\theta) = H_R\theta`."""
        return self.hessian_action(theta)
