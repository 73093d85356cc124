r"""Readouts: the map from the network output :math:`u_N` to the loss, with exact derivatives.

- :class:`PooledClassifier`: 2×2 average pooling, a linear classifier and the mean softmax
  cross-entropy.
- :class:`FieldMisfit`: the mean squared misfit to target fields in the lumped-mass norm.
- :class:`ProbeRegression`: :math:`u_N` at probe points, a linear map and the mean squared
  misfit to target values (linear in its weights: variable projection eliminates them).

Each readout exposes ``value``, ``adjoint``, ``tlm`` and ``soa`` kernels with the states they
need as arguments; ``adj`` and ``hess`` are the adjoint and second-order adjoint of the scalar
loss (1 and 0 for a gradient and a Hessian action of the loss itself).
"""

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from pdeopt.errors import InputError
from pdeopt.model.control import ControlLayout

__all__ = ["PooledClassifier", "FieldMisfit", "ProbeRegression"]


class _LinearReadout:
    """Features :math:`F = S u_N` for a sparse point-to-feature map :math:`S` (``pool``, ``Q``
    rows, reduced over the spatial communicator) and the affine map :math:`F W^T + c`."""

    def initial_controls(self, rng: np.random.Generator, scale: float = 0.0) -> np.ndarray:
        r"""Weights normal with variance :math:`\mathrm{scale}^2/(QC)` (the features' fan-in),
        biases zero.

        ``scale = 0`` starts at :math:`W = 0`, where :math:`\ell` does not depend on
        :math:`u_N`: there the gradient and the Gauss-Newton matrix vanish in every network
        control, and the first steps can only move the readout.
        """
        theta = np.zeros(self.layout.size)
        W = self.layout.view(theta, "readout.weight")
        W[...] = scale / np.sqrt(self.Q * self.C) * rng.standard_normal(W.shape)
        return theta

    def features(self, u):
        """:math:`F` ``(B, Q C)``, reduced over the spatial communicator."""
        n, B, C = u.shape
        F = (self.pool @ u.reshape(n, B * C)).reshape(self.Q, B, C)
        self.comm.Allreduce(MPI.IN_PLACE, F, op=MPI.SUM)
        return np.ascontiguousarray(F.transpose(1, 0, 2)).reshape(B, self.Q * C)

    def features_adjoint(self, F_bar, n):
        B = F_bar.shape[0]
        F2 = np.ascontiguousarray(F_bar.reshape(B, self.Q, self.C).transpose(1, 0, 2))
        return (self.poolT @ F2.reshape(self.Q, B * self.C)).reshape(n, B, self.C)

    def logits(self, u, v):
        F = self.features(u)
        return F, F @ v["readout.weight"].T + v["readout.bias"]

    def _ell_dot(self, u_dot, record, v, vd):
        F, _ = record
        F_dot = self.features(u_dot)
        return F_dot, F_dot @ v["readout.weight"].T + F @ vd["readout.weight"].T + vd["readout.bias"]

    def _affine_adjoint(self, ell_bar, F, v, n):
        r""":math:`(\bar u, \bar W, \bar c)` from :math:`\bar\ell` through :math:`\ell = FW^T + c`."""
        grad = np.zeros(self.layout.size)
        g = self.layout.views(grad)
        g["readout.weight"][...] = ell_bar.T @ F
        g["readout.bias"][...] = ell_bar.sum(axis=0)
        return self.features_adjoint(ell_bar @ v["readout.weight"], n), grad

    def _affine_soa(self, ell_hat, ell_bar, F, F_dot, v, vd, n):
        """The tangent of :meth:`_affine_adjoint`: ``ell_hat`` is the tangent of ``ell_bar``."""
        u_hat, out = self._affine_adjoint(ell_hat, F, v, n)
        h = self.layout.views(out)
        h["readout.weight"] += ell_bar.T @ F_dot
        return u_hat + self.features_adjoint(ell_bar @ vd["readout.weight"], n), out


class PooledClassifier(_LinearReadout):
    r"""Loss :math:`J = \frac1B\sum_b \big(\operatorname{logsumexp}\ell_b - \ell_{b,y_b}\big)`,
    :math:`\ell = F W^T + c`, :math:`F = \mathrm{pool}(u_N)`.

    :math:`F_b` stacks the 2×2 averages of every channel (coarse pixel major, channel minor), so
    an 8×8 image with :math:`C` channels gives :math:`16C` features.

    Parameters
    ----------
    grid
        The :class:`~pdeopt.model.grid.PixelGrid` (even numbers of pixels per side).
    channels
        Channels of :math:`u_N`.
    classes
        Number of classes :math:`K`.
    """

    def __init__(self, grid, channels: int, classes: int):
        if grid.nx % 2 or grid.ny % 2:
            raise InputError(f"2x2 pooling needs even image sides, got {grid.ny}x{grid.nx}.")
        self.grid, self.C, self.K = grid, int(channels), int(classes)
        qx, qy = grid.nx // 2, grid.ny // 2
        self.Q = qx * qy
        q = (grid.iy // 2) * qx + grid.ix // 2
        n = grid.n_owned
        self.pool = sp.csr_matrix((np.full(n, 0.25), (q, np.arange(n))), shape=(self.Q, n))
        self.poolT = self.pool.T.tocsr()
        self.comm = grid.comm
        self.layout = ControlLayout([("readout.weight", (self.K, self.Q * self.C)),
                                     ("readout.bias", (self.K,))])

    def check_labels(self, labels):
        labels = np.asarray(labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise InputError(f"labels must be a 1-D integer array, got {labels.dtype} "
                             f"with shape {labels.shape}.")
        if labels.size and (labels.min() < 0 or labels.max() >= self.K):
            raise InputError(f"labels must lie in [0, {self.K - 1}], got range "
                             f"[{labels.min()}, {labels.max()}].")
        return labels

    def value(self, u, v, labels):
        """Return the loss and the record ``(F, p)`` (features, class probabilities)."""
        F, ell = self.logits(u, v)
        ell_max = ell.max(axis=1, keepdims=True)
        e = np.exp(ell - ell_max)
        Z = e.sum(axis=1, keepdims=True)
        p = e / Z
        B = ell.shape[0]
        J = float(np.sum(np.log(Z[:, 0]) + ell_max[:, 0] - ell[np.arange(B), labels]) / B)
        return J, (F, p)

    def _residual(self, p, labels):
        r = p.copy()
        r[np.arange(len(labels)), labels] -= 1.0
        return r / len(labels)

    def adjoint(self, u, record, v, labels, adj=1.0):
        r"""Return :math:`(\bar u, \bar\theta)`; :math:`\bar\ell = \mathrm{adj}\,(p - Y)/B`."""
        F, p = record
        return self._affine_adjoint(adj * self._residual(p, labels), F, v, u.shape[0])

    def tlm(self, u, record, v, labels, u_dot, vd):
        """Return :math:`\\dot J`."""
        _, ell_dot = self._ell_dot(u_dot, record, v, vd)
        return float(np.sum(self._residual(record[1], labels) * ell_dot))

    def soa(self, u, record, v, labels, u_dot, vd, adj=1.0, hess=0.0, gauss_newton=False):
        r"""Return :math:`(\hat u, \hat\theta)`, the tangent of :meth:`adjoint`; the softmax
        Hessian is :math:`\dot{\bar\ell} = (p\odot\dot\ell - p\,(p\cdot\dot\ell))/B`.
        With ``gauss_newton`` the terms of the bilinear logits :math:`WF + c` weighted by the
        residual are dropped, leaving :math:`J_\ell^T \nabla^2_\ell\mathrm{CE}\, J_\ell`."""
        F, p = record
        F_dot, ell_dot = self._ell_dot(u_dot, record, v, vd)
        r = self._residual(p, labels)
        ell_bar = 0.0 * r if gauss_newton else adj * r
        ell_hat = adj * (p * ell_dot - p * np.sum(p * ell_dot, axis=1, keepdims=True)) / len(labels)
        ell_hat += hess * r
        return self._affine_soa(ell_hat, ell_bar, F, F_dot, v, vd, u.shape[0])

    def probabilities(self, u, v):
        r"""Class probabilities :math:`\operatorname{softmax}(\ell_b)`, ``(B, K)``."""
        ell = self.logits(u, v)[1]
        e = np.exp(ell - ell.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, u, v):
        """Predicted class of every sample."""
        return np.argmax(self.logits(u, v)[1], axis=1)


class FieldMisfit:
    r"""Loss :math:`J = \frac{1}{2B}\sum_{b,c} (u_b - y_b)^T M (u_b - y_b)` over the batch.

    Parameters
    ----------
    mass
        The owned lumped-mass diagonal :math:`M` (``OperatorSet.mass``).
    comm
        The spatial communicator.
    """

    layout = ControlLayout([])

    def __init__(self, mass, comm=MPI.COMM_WORLD):
        self.m = np.asarray(mass)[:, None, None]
        self.comm = comm

    def initial_controls(self, rng, scale=0.0):
        return np.zeros(0)

    def value(self, u, v, target):
        if target.shape != u.shape:
            raise InputError(f"target fields have shape {target.shape}, the network output "
                             f"{u.shape}.")
        r = u - target
        B = u.shape[1]
        J = self.comm.allreduce(float(np.sum(self.m * r * r)), op=MPI.SUM) / (2 * B)
        return J, r

    def adjoint(self, u, record, v, target, adj=1.0):
        return adj * self.m * record / u.shape[1], np.zeros(0)

    def tlm(self, u, record, v, target, u_dot, vd):
        return self.comm.allreduce(float(np.sum(self.m * record * u_dot)), op=MPI.SUM) / u.shape[1]

    def soa(self, u, record, v, target, u_dot, vd, adj=1.0, hess=0.0, gauss_newton=False):
        # quadratic in u: the Gauss-Newton and exact Hessians coincide
        return self.m * (adj * u_dot + hess * record) / u.shape[1], np.zeros(0)


class ProbeRegression(_LinearReadout):
    r"""Loss :math:`J = \frac{1}{2B}\|F W^T + \mathbf 1 c^T - Y\|_F^2`,
    :math:`F_b = (u_N^{(b)}(z_p))_{p, c}` the values of every channel at the probe pixels.

    Parameters
    ----------
    grid
        The :class:`~pdeopt.model.grid.PixelGrid`.
    channels
        Channels of :math:`u_N`.
    probes
        Pixel indices ``(P, 2)`` as ``(iy, ix)``.
    outputs
        Number of predicted values per sample.
    """

    def __init__(self, grid, channels: int, probes, outputs: int):
        probes = np.asarray(probes, dtype=np.intp).reshape(-1, 2)
        if (probes < 0).any() or (probes[:, 0] >= grid.ny).any() or (probes[:, 1] >= grid.nx).any():
            raise InputError(f"probes must be pixel indices (iy, ix) inside {grid.shape}.")
        self.grid, self.C, self.K, self.P = grid, int(channels), int(outputs), len(probes)
        self.probes = probes
        index = {(int(y), int(x)): p for p, (y, x) in enumerate(probes)}
        owned = [(p, i) for i, key in enumerate(zip(grid.iy, grid.ix))
                 if (p := index.get((int(key[0]), int(key[1])))) is not None]
        rows = np.array([p for p, _ in owned], dtype=np.intp)
        cols = np.array([i for _, i in owned], dtype=np.intp)
        self.pool = sp.csr_matrix((np.ones(len(rows)), (rows, cols)),
                                  shape=(self.P, grid.n_owned))
        self.poolT = self.pool.T.tocsr()
        self.Q = self.P
        self.comm = grid.comm
        self.layout = ControlLayout([("readout.weight", (self.K, self.P * self.C)),
                                     ("readout.bias", (self.K,))])

    def check_targets(self, target, batch):
        target = np.ascontiguousarray(target, dtype=float)
        if target.shape != (batch, self.K) or not np.all(np.isfinite(target)):
            raise InputError(f"regression targets must be finite with shape ({batch}, {self.K}), "
                             f"got {target.shape}.")
        return target

    def value(self, u, v, target):
        """Return the loss and the record ``(F, r)`` (features, residual)."""
        F, pred = self.logits(u, v)
        r = pred - target
        return float(0.5 * np.sum(r * r) / len(r)), (F, r)

    def adjoint(self, u, record, v, target, adj=1.0):
        F, r = record
        return self._affine_adjoint(adj * r / len(r), F, v, u.shape[0])

    def tlm(self, u, record, v, target, u_dot, vd):
        _, pred_dot = self._ell_dot(u_dot, record, v, vd)
        return float(np.sum(record[1] * pred_dot) / len(record[1]))

    def soa(self, u, record, v, target, u_dot, vd, adj=1.0, hess=0.0, gauss_newton=False):
        """The tangent of :meth:`adjoint`; ``gauss_newton`` drops the residual-weighted terms."""
        F, r = record
        F_dot, pred_dot = self._ell_dot(u_dot, record, v, vd)
        B = len(r)
        ell_bar = 0.0 * r if gauss_newton else adj * r / B
        ell_hat = (adj * pred_dot + hess * r) / B
        return self._affine_soa(ell_hat, ell_bar, F, F_dot, v, vd, u.shape[0])

    def predict(self, u, v):
        """Predicted values ``(B, outputs)``."""
        return self.logits(u, v)[1]
