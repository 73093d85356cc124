r"""Stacked sparse operators acting on the batch × channels block, and the channel mixes.

A layer's spatial operator is

.. math:: L(u; \Theta) = \sum_{s=1}^{S} D_s\, u\, \Theta_s^T,

with :math:`D_s` sparse (points × points) and :math:`\Theta_s` a small channels × channels matrix.
The state ``u`` is the whole block ``(n_points, batch, channels)``, row-major, so one sparse
product :math:`Y = [D_1; \dots; D_S]\, u` acts on every sample and channel at once and the mix
:math:`\sum_s Y_s \Theta_s^T` is a sum of dense GEMMs. No Python loop runs over samples,
channels or points.
"""

import numpy as np
import scipy.sparse as sp
from scipy.linalg import blas
from mpi4py import MPI
from petsc4py import PETSc

from pdeopt.model.stencil_kernel import stencil_kernel

__all__ = ["StencilStack", "GhostExchange", "mix", "contract", "channel_sums"]


def _pointer(a):
    return None if a is None else a.ctypes.data


class GhostExchange:
    """Fetch the rows of a row-distributed block that other ranks own (PETSc ``VecScatter``).

    Parameters
    ----------
    ghosts
        Sorted global indices of the off-process rows this rank reads.
    n_owned
        Rows owned by this rank.
    comm
        The communicator the rows are distributed over.
    """

    def __init__(self, ghosts: np.ndarray, n_owned: int, comm: MPI.Comm = MPI.COMM_WORLD):
        self.ghosts = np.asarray(ghosts, dtype=PETSc.IntType)
        self.n_owned = n_owned
        self.comm = comm
        self._scatters = {}  # one scatter per column count: PETSc objects, not data

    def _scatter(self, p):
        if p not in self._scatters:
            gvec = PETSc.Vec().createMPI((self.n_owned * p, PETSc.DETERMINE), bsize=p,
                                         comm=self.comm)
            lvec = PETSc.Vec().createSeq(len(self.ghosts) * p, bsize=p, comm=PETSc.COMM_SELF)
            iset = PETSc.IS().createBlock(p, self.ghosts, comm=PETSc.COMM_SELF)
            self._scatters[p] = (gvec, lvec, PETSc.Scatter().create(gvec, iset, lvec, None))
        return self._scatters[p]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """The ghost rows ``(n_ghost, p)`` of the distributed block whose owned rows are ``X``."""
        p = X.shape[1]
        gvec, lvec, scatter = self._scatter(p)
        gvec.placeArray(np.ascontiguousarray(X).reshape(-1))
        try:
            scatter.scatter(gvec, lvec, PETSc.InsertMode.INSERT, PETSc.ScatterMode.FORWARD)
        finally:
            gvec.resetArray()
        return lvec.getArray(readonly=True).reshape(-1, p).copy()


class StencilStack:
    r"""The stacked operator :math:`[D_1; \dots; D_S]` on this rank's rows.

    Built from assembled, row-distributed PETSc matrices. The owned rows are split into the
    columns this rank owns and the ghost columns, fetched by :class:`GhostExchange`.

    Parameters
    ----------
    mats
        The assembled PETSc matrices :math:`D_s`, all with the same row distribution.
    comm
        Their communicator.
    """

    def __init__(self, mats: list[PETSc.Mat], comm: MPI.Comm = MPI.COMM_WORLD):
        rstart, rend = mats[0].getOwnershipRange()
        n = rend - rstart
        csrs = [m.getValuesCSR() for m in mats]
        cols = np.concatenate([aj for _, aj, _ in csrs])
        ghosts = np.unique(cols[(cols < rstart) | (cols >= rend)])
        blocks = []
        for ai, aj, av in csrs:
            owned = (aj >= rstart) & (aj < rend)
            local = np.where(owned, aj - rstart, n + np.searchsorted(ghosts, aj))
            blocks.append(sp.csr_matrix((av, local, ai), shape=(n, n + len(ghosts))))
        full = sp.vstack(blocks, format="csr")
        full.eliminate_zeros()  # assembled sparsity patterns carry structural zeros
        self.S, self.n = len(mats), n
        self.owned = full[:, :n].tocsr()
        self.off = full[:, n:].tocsr()
        self.exchange = GhostExchange(ghosts, n, comm)
        self.comm = comm
        # the fused kernel's CSR arrays: int32 indices, contiguous
        self._csr = [tuple(np.ascontiguousarray(a, dtype=dt) for a, dt in
                           ((m.indptr, np.int32), (m.indices, np.int32), (m.data, np.float64)))
                     for m in (self.owned, self.off)]

    def spread(self, X: np.ndarray) -> np.ndarray:
        r"""Return :math:`Y_s = D_s X` as an array ``(S, n, ...)`` for a block ``X``
        ``(n, ...)``."""
        shape = X.shape
        X2 = X.reshape(self.n, -1)
        Y = self.owned @ X2
        if self.off.nnz:
            Y += self.off @ self.exchange(X2)
        return Y.reshape((self.S,) + shape)

    def _fused(self, X, Phi, out, W, bias=None):
        """``out (+)= sum_s D_s X Phi_s^T + bias`` (if ``Phi``; a new ``out`` if none is given)
        and ``G_s = (D_s X)^T W`` (if ``W``) in one pass of the compiled kernel
        (:mod:`pdeopt.model.stencil_kernel`)."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 3 or X.shape[0] != self.n:
            raise ValueError(f"expected a block (n={self.n}, batch, channels), got {X.shape}.")
        n, B, c_in = X.shape
        c_out = c_in if Phi is None else Phi.shape[1]
        c_w = c_in if W is None else W.shape[-1]
        if bias is not None:
            bias = np.ascontiguousarray(bias, dtype=np.float64)
        if W is not None:
            W = np.ascontiguousarray(W, dtype=np.float64)
        if out is not None and not out.flags.c_contiguous:
            raise ValueError("the fused kernel accumulates in place: `out` must be "
                             "C-contiguous.")
        for name, a, shape in (("Phi", Phi, (self.S, c_out, c_in)), ("out", out, (n, B, c_out)),
                               ("bias", bias, (c_out,)), ("W", W, (n, B, c_w))):
            if a is not None and (a.shape != shape or a.dtype != np.float64):
                raise ValueError(f"the fused kernel needs {name} of shape {shape} in float64, "
                                 f"got {a.shape} {a.dtype}.")
        kernel = stencil_kernel(c_in, c_out, c_w, self.comm)
        X2 = X.reshape(n, -1)
        ghost = self.exchange(X2) if self.off.nnz else None
        PhiT = None if Phi is None else np.ascontiguousarray(np.swapaxes(Phi, 1, 2))
        accumulate = out is not None
        if Phi is not None and out is None:
            out = np.empty((n, B, c_out))
        G = None if W is None else np.zeros((self.S, c_in, c_w))
        (op, oj, ov), (gp, gj, gv) = self._csr
        ptr = _pointer
        kernel(n, self.S, B, ptr(op), ptr(oj), ptr(ov), ptr(X),
               *((ptr(gp), ptr(gj), ptr(gv), ptr(ghost)) if ghost is not None
                 else (None,) * 4),
               ptr(PhiT), ptr(out), int(accumulate), ptr(bias), ptr(W), ptr(G))
        return out, G

    def apply(self, X: np.ndarray, Phi: np.ndarray, out: np.ndarray | None = None,
              bias: np.ndarray | None = None) -> np.ndarray:
        r"""Return ``out`` :math:`= \sum_s D_s X \Phi_s^T + b` (added to ``out`` if given):
        the mix of the spread, ``mix(self.spread(X), Phi)``, without storing the spread.

        ``X`` is ``(n, batch, c_in)``, ``Phi`` is ``(S, c_out, c_in)``, the optional ``bias``
        :math:`b` is ``(c_out,)``.
        """
        return self._fused(X, Phi, out, None, bias)[0]

    def contract(self, X: np.ndarray, W: np.ndarray) -> np.ndarray:
        r"""Return :math:`G_s = (D_s X)^T W` ``(S, c_in, c_w)``, ``contract(self.spread(X), W)``
        without storing the spread (sums over the owned points and the batch)."""
        return self._fused(X, None, None, W)[1]

    def apply_contract(self, X: np.ndarray, Phi: np.ndarray, W: np.ndarray,
                       out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        r""":meth:`apply` and :meth:`contract` of the same ``X`` in one pass: returns
        ``(out, G)``."""
        return self._fused(X, Phi, out, W)


def mix(Y: np.ndarray, Phi: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    r"""Return ``out`` :math:`= \sum_s Y_s \Phi_s^T` (added to ``out`` if given).

    ``Y`` is ``(S, n, batch, c_in)``, ``Phi`` is ``(S, c_out, c_in)``; the result is
    ``(n, batch, c_out)``. Each term is one GEMM accumulated in place.
    """
    S, c_in = Y.shape[0], Y.shape[-1]
    rows = Y[0].size // c_in
    if out is None:
        out = np.zeros(Y.shape[1:-1] + (Phi.shape[1],))
    elif not out.flags.c_contiguous:
        raise ValueError("mix accumulates in place: `out` must be C-contiguous.")
    # out^T += Phi_s Y_s^T in Fortran order: no copy of Y or out.
    outT = out.reshape(rows, -1).T
    for s in range(S):
        blas.dgemm(1.0, Phi[s], Y[s].reshape(rows, c_in).T, beta=1.0, c=outT, overwrite_c=True)
    return out


def contract(Y: np.ndarray, W: np.ndarray) -> np.ndarray:
    r"""Return :math:`G_s = Y_s^T W` as ``(S, c_y, c_w)``: the gradient of a mix with respect
    to :math:`\Phi`.

    ``Y`` is ``(S, n, batch, c_y)`` and ``W`` is ``(n, batch, c_w)``; sums run over the owned
    points and the batch (the caller reduces over ranks).
    """
    S, c_y = Y.shape[0], Y.shape[-1]
    W2 = W.reshape(-1, W.shape[-1])
    return np.stack([Y[s].reshape(-1, c_y).T @ W2 for s in range(S)])


def channel_sums(a: np.ndarray) -> np.ndarray:
    r"""Return :math:`\sum_{i,b} a_{i,b,:}`, the sum over every axis but the last (the
    gradient of a bias), as ``(c,)``: a BLAS matrix-vector product, where NumPy's
    ``sum(axis=0)`` over rows of a few channels is an order of magnitude slower."""
    a2 = a.reshape(-1, a.shape[-1])
    return np.ones(a2.shape[0]) @ a2
