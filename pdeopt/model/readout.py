r"""Readouts: the map from the network output :math:`u_N` to the loss, with exact derivatives.

- :class:`PooledClassifier`: 2×2 average pooling, a linear classifier and the mean softmax
  cross-entropy.
- :class:`FieldMisfit`: the mean squared misfit to target fields in the lumped-mass norm.
- :class:`ProbeRegression`: :math:`u_N` at probe points, a linear map and the mean squared
  misfit to target values.

Every readout is a :class:`Readout`: it checks its targets (:meth:`Readout.check_target`) and
exposes ``value``, ``adjoint``, ``tlm`` and ``soa`` kernels with the states they need as
arguments; ``adj`` and ``hess`` are the adjoint and second-order adjoint of the scalar loss (1
and 0 for a gradient and a Hessian action of the loss itself). The two readouts linear in
their weights are :class:`LinearReadout`\ s, which also solve the inner problem of variable
projection, :math:`w^* = \arg\min_w J + \frac\alpha2\|w\|^2`
(:meth:`LinearReadout.optimal_weights`).
"""

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from mpi4py import MPI

from pdeopt.checks import integer, real
from pdeopt.data.validation import check_finite, check_probes, real_array, shown
from pdeopt.errors import ConvergenceError, InputError
from pdeopt.model.control import ControlLayout
from pdeopt.model.grid import PixelGrid
from pdeopt.model.operators import OperatorSet
from pdeopt.parallel import raise_collectively

__all__ = ["Readout", "LinearReadout", "OptimalWeights", "PooledClassifier", "FieldMisfit",
           "ProbeRegression", "softmax", "cross_entropy", "cross_entropy_gradient",
           "cross_entropy_hessian"]

#: The control views of a model (``ControlLayout.views``): block name -> array.
Views = Mapping[str, np.ndarray]


def _check_grid(owner: str, grid) -> None:
    if not isinstance(grid, PixelGrid):
        raise InputError(f"{owner}: grid={shown(grid)} must be a PixelGrid, the network's; "
                         f"build it with pdeopt.PixelGrid(nx, ny).")


def _check_channels(owner: str, channels) -> int:
    return integer(owner, "channels", channels, low=1,
                   remedy="give the network's number of channels")


def _check_rng_scale(owner: str, rng, scale) -> float:
    if not isinstance(rng, np.random.Generator):
        raise InputError(f"{owner}: rng={shown(rng)} must be a numpy.random.Generator; pass "
                         f"np.random.default_rng(seed).")
    return real(owner, "scale", scale, low=0.0,
                remedy="the weights' standard deviation is scale / sqrt(fan-in); 0 starts at "
                       "W = 0")


# -- softmax cross-entropy, written once ---------------------------------------------------------
def _logsumexp_softmax(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:math:`\\operatorname{logsumexp}\\ell_b` ``(B,)`` and :math:`\\operatorname{softmax}\\ell_b`
    ``(B, K)``, shifted by :math:`\\max_k \\ell_{bk}` so that no exponential overflows."""
    ell_max = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - ell_max)
    Z = e.sum(axis=1, keepdims=True)
    return np.log(Z[:, 0]) + ell_max[:, 0], e / Z


def softmax(logits: np.ndarray) -> np.ndarray:
    r"""Class probabilities :math:`p_{bk} = e^{\ell_{bk}} / \sum_j e^{\ell_{bj}}`, ``(B, K)``."""
    return _logsumexp_softmax(logits)[1]


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    r"""The mean softmax cross-entropy and the class probabilities.

    .. math:: J = \frac1B\sum_b \big(\operatorname{logsumexp}\ell_b - \ell_{b,y_b}\big),
       \qquad p_b = \operatorname{softmax}\ell_b.

    Returns ``(J, p)``.
    """
    lse, p = _logsumexp_softmax(logits)
    B = len(labels)
    return float(np.sum(lse - logits[np.arange(B), labels]) / B), p


def cross_entropy_gradient(p: np.ndarray, labels: np.ndarray) -> np.ndarray:
    r""":math:`\partial J/\partial\ell = (p - Y)/B`, :math:`Y` the one-hot labels."""
    r = p.copy()
    r[np.arange(len(labels)), labels] -= 1.0
    return r / len(labels)


def cross_entropy_hessian(p: np.ndarray, ell_dot: np.ndarray) -> np.ndarray:
    r""":math:`\nabla^2_\ell J\,\dot\ell`: :math:`(p\odot\dot\ell - p\,(p\cdot\dot\ell))/B`
    row by row (:math:`\operatorname{diag}p_b - p_bp_b^T` per sample)."""
    return (p * ell_dot - p * np.sum(p * ell_dot, axis=1, keepdims=True)) / len(p)


# -- the interface -------------------------------------------------------------------------------
class Readout(abc.ABC):
    r"""The loss :math:`J(u_N, \theta_r; y)` of the network output and its derivative kernels.

    The kernels take ``u`` :math:`u_N` ``(n_owned, B, C)``, ``w`` the model's control views
    (the readout reads its own blocks, :attr:`layout`), the ``target`` as returned by
    :meth:`check_target` and the ``record`` returned by :meth:`value`; they keep nothing
    between calls. Sums over points are reduced over :attr:`comm` where the loss needs them.

    Attributes
    ----------
    layout : ControlLayout
        The readout's controls :math:`\theta_r` (appended to the network's).
    comm : mpi4py.MPI.Comm
        The spatial communicator.
    """

    layout: ControlLayout
    comm: MPI.Comm

    @abc.abstractmethod
    def initial_controls(self, rng: np.random.Generator, scale: float = 0.0) -> np.ndarray:
        """Initial readout controls (the same on every rank for the same ``rng``)."""

    @abc.abstractmethod
    def check_target(self, target, batch: int) -> np.ndarray:
        """Return ``target`` as the array the kernels take for a batch of ``batch`` samples, or
        raise :class:`~pdeopt.errors.InputError` naming what is wrong and the remedy."""

    @abc.abstractmethod
    def value(self, u: np.ndarray, w: Views, target: np.ndarray) -> tuple[float, object]:
        """Return the loss :math:`J` and the record the derivative kernels need."""

    @abc.abstractmethod
    def adjoint(self, u: np.ndarray, record, w: Views, target: np.ndarray,
                adj: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        r"""Return :math:`(\bar u, \bar\theta_r) =
        \mathrm{adj}\,(\partial_u J, \partial_{\theta_r} J)`."""

    @abc.abstractmethod
    def tlm(self, u: np.ndarray, record, w: Views, target: np.ndarray, u_dot: np.ndarray,
            w_dot: Views) -> float:
        r"""Return :math:`\dot J = \partial_u J\,\dot u + \partial_{\theta_r} J\,\dot\theta_r`."""

    @abc.abstractmethod
    def soa(self, u: np.ndarray, record, w: Views, target: np.ndarray, u_dot: np.ndarray,
            w_dot: Views, adj: float = 1.0, hess: float = 0.0,
            gauss_newton: bool = False) -> tuple[np.ndarray, np.ndarray]:
        r"""Return :math:`(\hat u, \hat\theta_r)`, the tangent of :meth:`adjoint` in the direction
        :math:`(\dot u, \dot\theta_r)`, plus ``hess`` times the gradient; ``gauss_newton`` drops
        the terms weighted by the loss's first derivative."""


@dataclass(frozen=True)
class OptimalWeights:
    r"""The solution of a :class:`LinearReadout`'s inner problem.

    Attributes
    ----------
    w : numpy.ndarray
        :math:`w^*`, flat readout controls (the readout's layout).
    iterations : int
        Newton iterations spent (0 for a closed form).
    hessian_solve : callable
        :math:`r \mapsto H_{ww}^{-1} r` at :math:`w^*` on flat readout controls.
    """

    w: np.ndarray
    iterations: int
    hessian_solve: Callable[[np.ndarray], np.ndarray]


class LinearReadout(Readout):
    r"""A readout linear in its weights: features :math:`F = S u_N`, logits
    :math:`\ell = F W^T + c`.

    :math:`S` maps the owned points to :attr:`sites` feature points (coarse pixels, probes),
    channel by channel, and is summed over the spatial communicator, so :math:`F_b` holds
    ``sites × channels`` features (site major, channel minor) and :math:`\ell_b` has
    :attr:`outputs` entries. With :math:`\tilde F = [F, \mathbf 1]` and
    :math:`\tilde W = [W^T; c^T]` the logits are :math:`\tilde F\tilde W`, and the inner problem
    of variable projection is

    .. math:: w^* = \arg\min_w\ J(\tilde F\tilde W) + \frac\alpha2\|\tilde W\|_F^2,

    solved by :meth:`optimal_weights`; its Hessian :math:`H_{ww}` is the weight block of the full
    Hessian.

    Parameters
    ----------
    grid
        The :class:`~pdeopt.model.grid.PixelGrid`.
    channels
        Channels of :math:`u_N`.
    pool
        :math:`S`, a sparse ``(sites, n_owned)`` matrix on this rank's points.
    outputs
        Entries of :math:`\ell_b`.
    """

    def __init__(self, grid: PixelGrid, channels: int, pool: sp.spmatrix, outputs: int):
        owner = type(self).__name__
        _check_grid(owner, grid)
        self.grid = grid
        self.channels = _check_channels(owner, channels)
        self.outputs = integer(owner, "outputs", outputs, low=1,
                               remedy="the readout predicts at least one value per sample")
        if not sp.issparse(pool) or pool.shape[1] != grid.n_owned or pool.shape[0] < 1:
            raise InputError(f"{owner}: pool must be a sparse (sites >= 1, n_owned="
                             f"{grid.n_owned}) matrix on this rank's points, got "
                             f"{getattr(pool, 'shape', type(pool).__name__)}.")
        self.pool = sp.csr_matrix(pool)
        self.poolT = self.pool.T.tocsr()
        self.sites = self.pool.shape[0]
        self.comm = grid.comm
        self.layout = ControlLayout([("readout.weight", (self.outputs, self.sites * self.channels)),
                                     ("readout.bias", (self.outputs,))])

    def initial_controls(self, rng: np.random.Generator, scale: float = 0.0) -> np.ndarray:
        r"""Weights normal with variance :math:`\mathrm{scale}^2/(\text{sites}\cdot C)` (the
        features' fan-in), biases zero.

        ``scale = 0`` starts at :math:`W = 0`, where :math:`\ell` does not depend on
        :math:`u_N`: there the gradient and the Gauss-Newton matrix vanish in every network
        control, and the first steps can only move the readout.
        """
        theta = np.zeros(self.layout.size)
        scale = _check_rng_scale(f"{type(self).__name__}.initial_controls", rng, scale)
        W = self.layout.view(theta, "readout.weight")
        W[...] = scale / np.sqrt(self.sites * self.channels) * rng.standard_normal(W.shape)
        return theta

    @property
    def n_owned(self) -> int:
        """Points of :math:`u_N` owned by this rank."""
        return self.pool.shape[1]

    def check_output(self, u, w: Views) -> np.ndarray:
        """Return the network output ``u`` as a float array ``(n_owned, B, C)``, or raise
        :class:`~pdeopt.errors.InputError` on every rank if on any rank it has another shape,
        no samples, or NaN or Inf values, or the readout controls in ``w`` are not finite.
        Collective; :meth:`predict` and :meth:`probabilities` call it."""
        owner = type(self).__name__
        u = real_array(owner, "u", u, self.comm)
        error = None
        if u.ndim != 3 or u.shape[0] != self.n_owned or u.shape[2] != self.channels \
                or u.shape[1] < 1:
            error = InputError(f"{owner}: u must be the network output of shape "
                               f"({self.n_owned}, B >= 1, {self.channels}) on rank "
                               f"{self.comm.rank}, got {u.shape}; pass model.output(theta, x).")
        elif not isinstance(w, Mapping) or any(name not in w for name in self.layout.names):
            error = InputError(f"{owner}: w must be the model's control views with the blocks "
                               f"{self.layout.names}; pass model.layout.views(theta).")
        raise_collectively(error, self.comm)
        check_finite(f"{owner}: u (the network output)", u, self.comm,
                     remedy="reject or impute non-finite input data before predicting")
        check_finite(f"{owner}: the readout controls",
                     np.concatenate([np.ravel(w[name]) for name in self.layout.names]),
                     self.comm, replicated=True,
                     remedy="predict with finite controls, e.g. a solver's result.theta")
        return u

    # -- features and the affine map ---------------------------------------------------------
    def features(self, u: np.ndarray) -> np.ndarray:
        """:math:`F = S u_N` ``(B, sites·C)``, reduced over the spatial communicator."""
        n, B, C = u.shape
        F = (self.pool @ u.reshape(n, B * C)).reshape(self.sites, B, C)
        self.comm.Allreduce(MPI.IN_PLACE, F, op=MPI.SUM)
        return np.ascontiguousarray(F.transpose(1, 0, 2)).reshape(B, self.sites * C)

    def features_adjoint(self, F_bar: np.ndarray, n: int) -> np.ndarray:
        r""":math:`S^T\bar F` ``(n, B, C)``: the transpose of :meth:`features` on this rank's
        ``n`` points (no reduction: :math:`\bar F` is replicated)."""
        B = F_bar.shape[0]
        F2 = np.ascontiguousarray(F_bar.reshape(B, self.sites, self.channels).transpose(1, 0, 2))
        return (self.poolT @ F2.reshape(self.sites, B * self.channels)).reshape(n, B,
                                                                                self.channels)

    def logits(self, u: np.ndarray, w: Views) -> tuple[np.ndarray, np.ndarray]:
        r"""The features :math:`F` and the logits (predictions) :math:`\ell = FW^T + c`
        ``(B, outputs)``."""
        F = self.features(u)
        return F, F @ w["readout.weight"].T + w["readout.bias"]

    def _logits_tlm(self, u_dot, record, w, w_dot):
        r""":math:`(\dot F, \dot\ell)`, :math:`\dot\ell = \dot F W^T + F\dot W^T + \dot c`."""
        F = record[0]
        F_dot = self.features(u_dot)
        return F_dot, (F_dot @ w["readout.weight"].T + F @ w_dot["readout.weight"].T
                       + w_dot["readout.bias"])

    def _affine_adjoint(self, ell_bar, F, w, n):
        r""":math:`(\bar u, \bar W, \bar c)` from :math:`\bar\ell` through
        :math:`\ell = FW^T + c`."""
        grad = np.zeros(self.layout.size)
        g = self.layout.views(grad)
        g["readout.weight"][...] = ell_bar.T @ F
        g["readout.bias"][...] = ell_bar.sum(axis=0)
        return self.features_adjoint(ell_bar @ w["readout.weight"], n), grad

    def _affine_soa(self, ell_hat, ell_bar, F, F_dot, w, w_dot, n):
        """The tangent of :meth:`_affine_adjoint`: ``ell_hat`` is the tangent of ``ell_bar``."""
        u_hat, out = self._affine_adjoint(ell_hat, F, w, n)
        h = self.layout.views(out)
        h["readout.weight"] += ell_bar.T @ F_dot
        return u_hat + self.features_adjoint(ell_bar @ w_dot["readout.weight"], n), out

    # -- the inner problem of variable projection --------------------------------------------
    def stack(self, w: np.ndarray) -> np.ndarray:
        r""":math:`\tilde W = [W^T; c^T]` ``(sites·C + 1, outputs)`` from flat readout controls."""
        v = self.layout.views(w)
        return np.vstack([v["readout.weight"].T, v["readout.bias"][None, :]])

    def unstack(self, Wt: np.ndarray) -> np.ndarray:
        r"""Flat readout controls from :math:`\tilde W`; the inverse of :meth:`stack`."""
        w = np.zeros(self.layout.size)
        v = self.layout.views(w)
        v["readout.weight"][...] = Wt[:-1].T
        v["readout.bias"][...] = Wt[-1]
        return w

    @staticmethod
    def _augmented(F):
        r""":math:`\tilde F = [F, \mathbf 1]`."""
        return np.hstack([F, np.ones((F.shape[0], 1))])

    def check_alpha(self, alpha: float) -> None:
        r"""Raise :class:`~pdeopt.errors.InputError` if the inner problem has no unique minimiser
        for the weight decay :math:`\alpha` (every :math:`\alpha \ge 0` is accepted here)."""
        if alpha < 0:
            raise InputError(f"alpha = {alpha:g}: the inner problem needs alpha >= 0; give the "
                             f"Regularizer a non-negative alpha.")

    @abc.abstractmethod
    def optimal_weights(self, F: np.ndarray, target: np.ndarray, alpha: float, *,
                        start: np.ndarray | None = None, tol: float = 1e-12,
                        max_it: int = 50) -> OptimalWeights:
        r""":math:`w^* = \arg\min_w J(\tilde F\tilde W; y) + \frac\alpha2\|w\|^2` for the features
        ``F`` ``(B, sites·C)`` and the checked ``target``, with :math:`H_{ww}^{-1}` there.

        ``start`` (flat readout controls) warm-starts an iterative solve, which stops at
        :math:`\|\partial_w\| \le` ``tol`` or raises :class:`~pdeopt.errors.ConvergenceError`
        after ``max_it`` iterations; a closed form ignores the three.
        """


class PooledClassifier(LinearReadout):
    r"""Loss :math:`J = \frac1B\sum_b \big(\operatorname{logsumexp}\ell_b - \ell_{b,y_b}\big)`,
    :math:`\ell = F W^T + c`, :math:`F = \mathrm{pool}(u_N)`.

    :math:`F_b` stacks the 2×2 averages of every channel (coarse pixel major, channel minor), so
    an 8×8 image with :math:`C` channels gives :math:`16C` features.

    Parameters
    ----------
    grid
        The :class:`~pdeopt.model.grid.PixelGrid` (even numbers of pixels per side).
    channels
        Channels of :math:`u_N` (an integer :math:`\ge 1`, the network's).
    classes
        Number of classes :math:`K \ge 2` (the :attr:`outputs`).
    """

    def __init__(self, grid: PixelGrid, channels: int, classes: int):
        _check_grid("PooledClassifier", grid)
        classes = integer("PooledClassifier", "classes", classes, low=2,
                          remedy="a classifier tells at least two classes apart (for one value "
                                 "per sample use ProbeRegression)")
        if grid.nx % 2 or grid.ny % 2:
            raise InputError(f"grid: 2x2 pooling needs even image sides, got {grid.ny}x{grid.nx}; "
                             f"pad or crop the images to even sides.")
        qx, qy = grid.nx // 2, grid.ny // 2
        q = (grid.iy // 2) * qx + grid.ix // 2
        n = grid.n_owned
        pool = sp.csr_matrix((np.full(n, 0.25), (q, np.arange(n))), shape=(qx * qy, n))
        super().__init__(grid, channels, pool, classes)

    @property
    def classes(self) -> int:
        """:math:`K`, the number of classes."""
        return self.outputs

    def check_target(self, target, batch: int) -> np.ndarray:
        """Labels: a 1-D integer array of ``batch`` class indices in :math:`[0, K)`."""
        labels = np.asarray(target)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise InputError(f"target: labels must be a 1-D integer array, got {labels.dtype} "
                             f"with shape {labels.shape}; pass class indices, not one-hot rows "
                             f"or floats.")
        if labels.shape[0] != batch:
            raise InputError(f"target: {labels.shape[0]} labels for a batch of {batch} samples; "
                             f"give one label per sample (column of x).")
        if labels.size and (labels.min() < 0 or labels.max() >= self.classes):
            raise InputError(f"target: labels must lie in [0, {self.classes - 1}], got range "
                             f"[{labels.min()}, {labels.max()}]; renumber the classes or raise "
                             f"classes.")
        return labels

    def value(self, u: np.ndarray, w: Views, target: np.ndarray) -> tuple[float, tuple]:
        """Return the loss and the record ``(F, p)`` (features, class probabilities)."""
        F, ell = self.logits(u, w)
        J, p = cross_entropy(ell, target)
        return J, (F, p)

    def adjoint(self, u, record, w, target, adj=1.0):
        r"""Return :math:`(\bar u, \bar\theta_r)`; :math:`\bar\ell = \mathrm{adj}\,(p - Y)/B`."""
        F, p = record
        return self._affine_adjoint(adj * cross_entropy_gradient(p, target), F, w, u.shape[0])

    def tlm(self, u, record, w, target, u_dot, w_dot):
        r"""Return :math:`\dot J = \sum (p - Y)\odot\dot\ell / B`."""
        _, ell_dot = self._logits_tlm(u_dot, record, w, w_dot)
        return float(np.sum(cross_entropy_gradient(record[1], target) * ell_dot))

    def soa(self, u, record, w, target, u_dot, w_dot, adj=1.0, hess=0.0, gauss_newton=False):
        r"""Return :math:`(\hat u, \hat\theta_r)`, the tangent of :meth:`adjoint`; the softmax
        Hessian is :math:`\dot{\bar\ell} = (p\odot\dot\ell - p\,(p\cdot\dot\ell))/B`.
        With ``gauss_newton`` the terms of the bilinear logits :math:`WF + c` weighted by the
        residual are dropped, leaving :math:`J_\ell^T \nabla^2_\ell\mathrm{CE}\, J_\ell`."""
        F, p = record
        F_dot, ell_dot = self._logits_tlm(u_dot, record, w, w_dot)
        r = cross_entropy_gradient(p, target)
        ell_bar = 0.0 * r if gauss_newton else adj * r
        ell_hat = adj * cross_entropy_hessian(p, ell_dot)
        ell_hat += hess * r
        return self._affine_soa(ell_hat, ell_bar, F, F_dot, w, w_dot, u.shape[0])

    def probabilities(self, u: np.ndarray, w: Views) -> np.ndarray:
        r"""Class probabilities :math:`\operatorname{softmax}(\ell_b)`, ``(B, K)``; ``u`` is
        checked (:meth:`~LinearReadout.check_output`, collective)."""
        return softmax(self.logits(self.check_output(u, w), w)[1])

    def predict(self, u: np.ndarray, w: Views) -> np.ndarray:
        """Predicted class of every sample; ``u`` is checked
        (:meth:`~LinearReadout.check_output`, collective)."""
        return np.argmax(self.logits(self.check_output(u, w), w)[1], axis=1)

    # -- the inner problem: softmax cross-entropy in the weights, by Newton's method ------------
    def check_alpha(self, alpha: float) -> None:
        """The cross-entropy need not have a minimiser in the weights without decay: require
        :math:`\\alpha > 0`."""
        if alpha <= 0:
            raise InputError(f"alpha = {alpha:g}: the classifier's inner problem needs alpha > 0 "
                             f"in the regulariser (without it the optimal weights need not "
                             f"exist); give the Regularizer alpha > 0.")

    def _inner(self, Ft, Wt, labels, alpha):
        """Inner objective, gradient ``(sites·C + 1, K)`` and class probabilities at ``Wt``."""
        J, p = cross_entropy(Ft @ Wt, labels)
        phi = J + 0.5 * alpha * np.sum(Wt * Wt)
        return phi, Ft.T @ cross_entropy_gradient(p, labels) + alpha * Wt, p

    def weight_hessian(self, Ft: np.ndarray, p: np.ndarray, alpha: float) -> np.ndarray:
        r""":math:`H_{ww} = \frac1B\sum_b \tilde f_b\tilde f_b^T \otimes (\operatorname{diag}p_b -
        p_bp_b^T) + \alpha I`, dense, rows and columns ordered as ``Wt.ravel()``.

        ``Ft`` is :math:`\tilde F = [F, \mathbf 1]` ``(B, A)``, ``p`` the class probabilities.
        """
        B, A = Ft.shape
        K = p.shape[1]
        H = np.zeros((A, K, A, K))
        for k in range(K):  # the diag(p) part: one weighted Gram matrix per class
            H[:, k, :, k] = (Ft * p[:, k:k + 1]).T @ Ft
        V = (Ft[:, :, None] * p[:, None, :]).reshape(B, A * K)
        H = H.reshape(A * K, A * K) - V.T @ V
        H /= B
        H[np.diag_indices_from(H)] += alpha
        return H

    def optimal_weights(self, F, target, alpha, *, start=None, tol=1e-12, max_it=50):
        r""":math:`w^*` by Newton's method with an Armijo backtracking line search, warm-started
        at ``start``, to :math:`\|\partial_w\| \le` ``tol``; :math:`H_{ww}` factored by Cholesky
        (strictly convex for :math:`\alpha > 0`)."""
        Ft = self._augmented(F)
        Wt = np.zeros((Ft.shape[1], self.classes)) if start is None else self.stack(start)
        phi, g, p = self._inner(Ft, Wt, target, alpha)
        for it in range(max_it + 1):
            factor = sla.cho_factor(self.weight_hessian(Ft, p, alpha))
            if np.linalg.norm(g) <= tol:
                return OptimalWeights(self.unstack(Wt), it, self._cholesky_solve(factor))
            if it == max_it:
                break
            step = -sla.cho_solve(factor, g.ravel()).reshape(g.shape)
            slope, t = float(np.sum(g * step)), 1.0
            roundoff = 10 * np.finfo(float).eps * abs(phi)  # near w*, phi changes by round-off
            while True:
                phi_t, g_t, p_t = self._inner(Ft, Wt + t * step, target, alpha)
                if phi_t <= phi + 1e-4 * t * slope + roundoff or t < 1e-10:
                    break
                t *= 0.5
            Wt, phi, g, p = Wt + t * step, phi_t, g_t, p_t
        raise ConvergenceError(
            f"the classifier's inner Newton iteration reached |grad| = {np.linalg.norm(g):.3e}, "
            f"not tol = {tol:.1e}, in max_it = {max_it} iterations; raise max_it or tol "
            f"(ProjectedReducedFunctional's inner_max_it, inner_tol), or alpha (now {alpha:g}).")

    def _cholesky_solve(self, factor):
        def solve(r):
            R = self.stack(r)
            return self.unstack(sla.cho_solve(factor, R.ravel()).reshape(R.shape))
        return solve


class ProbeRegression(LinearReadout):
    r"""Loss :math:`J = \frac{1}{2B}\|F W^T + \mathbf 1 c^T - Y\|_F^2`,
    :math:`F_b = (u_N^{(b)}(z_p))_{p, c}` the values of every channel at the probe pixels.

    Parameters
    ----------
    grid
        The :class:`~pdeopt.model.grid.PixelGrid`.
    channels
        Channels of :math:`u_N` (an integer :math:`\ge 1`, the network's).
    probes
        Pixel indices ``(P, 2)`` as ``(iy, ix)`` (the :attr:`sites`): at least one, distinct,
        inside the grid.
    outputs
        Number of predicted values per sample (an integer :math:`\ge 1`).
    """

    def __init__(self, grid: PixelGrid, channels: int, probes, outputs: int):
        _check_grid("ProbeRegression", grid)
        probes = check_probes("ProbeRegression", probes, grid.shape)
        self.probes = probes
        index = {(int(y), int(x)): p for p, (y, x) in enumerate(probes)}
        owned = [(p, i) for i, key in enumerate(zip(grid.iy, grid.ix))
                 if (p := index.get((int(key[0]), int(key[1])))) is not None]
        rows = np.array([p for p, _ in owned], dtype=np.intp)
        cols = np.array([i for _, i in owned], dtype=np.intp)
        pool = sp.csr_matrix((np.ones(len(rows)), (rows, cols)),
                             shape=(len(probes), grid.n_owned))
        super().__init__(grid, channels, pool, outputs)

    def check_target(self, target, batch: int) -> np.ndarray:
        """Regression targets: finite, ``(batch, outputs)``."""
        target = np.ascontiguousarray(target, dtype=float)
        if target.shape != (batch, self.outputs) or not np.all(np.isfinite(target)):
            raise InputError(f"target: regression targets must be finite with shape ({batch}, "
                             f"{self.outputs}), got {target.shape} with "
                             f"{np.count_nonzero(~np.isfinite(target))} NaN or Inf; give one row "
                             f"of {self.outputs} values per sample.")
        return target

    def value(self, u: np.ndarray, w: Views, target: np.ndarray) -> tuple[float, tuple]:
        """Return the loss and the record ``(F, r)`` (features, residual)."""
        F, pred = self.logits(u, w)
        r = pred - target
        return float(0.5 * np.sum(r * r) / len(r)), (F, r)

    def adjoint(self, u, record, w, target, adj=1.0):
        r"""Return :math:`(\bar u, \bar\theta_r)`; :math:`\bar\ell = \mathrm{adj}\,r/B`."""
        F, r = record
        return self._affine_adjoint(adj * r / len(r), F, w, u.shape[0])

    def tlm(self, u, record, w, target, u_dot, w_dot):
        r"""Return :math:`\dot J = \sum r\odot\dot\ell / B`."""
        _, pred_dot = self._logits_tlm(u_dot, record, w, w_dot)
        return float(np.sum(record[1] * pred_dot) / len(record[1]))

    def soa(self, u, record, w, target, u_dot, w_dot, adj=1.0, hess=0.0, gauss_newton=False):
        """The tangent of :meth:`adjoint`; ``gauss_newton`` drops the residual-weighted terms."""
        F, r = record
        F_dot, pred_dot = self._logits_tlm(u_dot, record, w, w_dot)
        B = len(r)
        ell_bar = 0.0 * r if gauss_newton else adj * r / B
        ell_hat = (adj * pred_dot + hess * r) / B
        return self._affine_soa(ell_hat, ell_bar, F, F_dot, w, w_dot, u.shape[0])

    def predict(self, u: np.ndarray, w: Views) -> np.ndarray:
        """Predicted values ``(B, outputs)``; ``u`` is checked
        (:meth:`~LinearReadout.check_output`, collective)."""
        return self.logits(self.check_output(u, w), w)[1]

    def optimal_weights(self, F, target, alpha, *, start=None, tol=1e-12, max_it=50):
        r"""Least squares in closed form:
        :math:`\tilde W^* = G^{-1}\tilde F^TY/B`, :math:`G = \tilde F^T\tilde F/B + \alpha I`,
        and :math:`H_{ww} = G \otimes I_K` (``start``, ``tol``, ``max_it`` unused)."""
        Ft = self._augmented(F)
        G = Ft.T @ Ft / len(Ft) + alpha * np.eye(Ft.shape[1])
        Wt = np.linalg.solve(G, Ft.T @ target / len(Ft))      # (sites·C + 1, K)

        def solve(r):
            return self.unstack(np.linalg.solve(G, self.stack(r)))
        return OptimalWeights(self.unstack(Wt), 0, solve)


class FieldMisfit(Readout):
    r"""Loss :math:`J = \frac{1}{2B}\sum_{b,c} (u_b - y_b)^T M (u_b - y_b)` over the batch.

    Parameters
    ----------
    operators
        The :class:`~pdeopt.model.operators.OperatorSet` of the network: its lumped-mass
        diagonal :math:`M` and its spatial communicator (an Ensemble member's, under an
        Ensemble).
    channels
        Channels :math:`C \ge 1` of :math:`u_N` (an integer, the network's).
    """

    layout = ControlLayout([])

    def __init__(self, operators: OperatorSet, channels: int):
        if not isinstance(operators, OperatorSet):
            raise InputError(f"FieldMisfit(operators, channels) takes the network's OperatorSet "
                             f"(pdeopt.assemble_operators(grid)), not a "
                             f"{type(operators).__name__}: its lumped mass and communicator.")
        self.mass, self.comm = np.asarray(operators.mass), operators.comm
        self.m = self.mass[:, None, None]
        self.channels = _check_channels("FieldMisfit", channels)

    def initial_controls(self, rng: np.random.Generator, scale: float = 0.0) -> np.ndarray:
        """No controls: an empty array."""
        _check_rng_scale("FieldMisfit.initial_controls", rng, scale)
        return np.zeros(0)

    @property
    def n_owned(self) -> int:
        """Points of :math:`u_N` owned by this rank."""
        return len(self.mass)

    def check_target(self, target, batch: int) -> np.ndarray:
        """Target fields: finite, ``(n_owned, batch, C)`` (on every rank: collective)."""
        target = np.ascontiguousarray(target, dtype=float)
        expected = (len(self.mass), batch, self.channels)
        shape_ok = target.ndim == 3 and target.shape[:2] == expected[:2] and \
            (self.channels is None or target.shape[2] == self.channels)
        bad = np.array([0 if shape_ok else 1, np.count_nonzero(~np.isfinite(target))])
        self.comm.Allreduce(MPI.IN_PLACE, bad, op=MPI.SUM)  # every rank raises, or none
        bad_shape, bad = bad
        if bad_shape:
            shown = expected if self.channels is not None else expected[:2] + ("C",)
            raise InputError(f"target: target fields must have shape (n_owned, batch, channels) "
                             f"= {shown} on every rank, got {target.shape} here; give the fields "
                             f"in the network input's layout (PixelGrid.to_field).")
        if bad:
            raise InputError(f"target: the target fields contain {bad} NaN or Inf values; clean "
                             f"or impute the data before training.")
        return target

    def value(self, u: np.ndarray, w: Views, target: np.ndarray) -> tuple[float, np.ndarray]:
        """Return the loss and the record :math:`r = u_N - y`."""
        if target.shape != u.shape:
            raise InputError(f"target fields have shape {target.shape}, the network output "
                             f"{u.shape}; give one field per sample and channel of u_N.")
        r = u - target
        B = u.shape[1]
        J = self.comm.allreduce(float(np.sum(self.m * r * r)), op=MPI.SUM) / (2 * B)
        return J, r

    def adjoint(self, u, record, w, target, adj=1.0):
        r"""Return :math:`(\bar u, \bar\theta_r) = (\mathrm{adj}\,M r/B, \varnothing)`."""
        return adj * self.m * record / u.shape[1], np.zeros(0)

    def tlm(self, u, record, w, target, u_dot, w_dot):
        r"""Return :math:`\dot J = \sum_b r_b^T M \dot u_b / B` (reduced over the communicator)."""
        return self.comm.allreduce(float(np.sum(self.m * record * u_dot)), op=MPI.SUM) / u.shape[1]

    def soa(self, u, record, w, target, u_dot, w_dot, adj=1.0, hess=0.0, gauss_newton=False):
        r"""Return :math:`(\hat u, \varnothing)`, :math:`\hat u = M(\mathrm{adj}\,\dot u +
        \mathrm{hess}\,r)/B`: the loss is quadratic in :math:`u`, so the Gauss-Newton and
        exact Hessians coincide."""
        return self.m * (adj * u_dot + hess * record) / u.shape[1], np.zeros(0)
