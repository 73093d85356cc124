r"""A low-rank-plus-regulariser preconditioner (randomised, as in hIPPYlib).

The data-misfit part of the Hessian, :math:`H_d = H - H_R`, is compressed by the generalised
eigenproblem :math:`H_d u_i = \lambda_i H_R u_i` (:math:`U^T H_R U = I`), computed by the
randomised double-pass algorithm of Halko, Martinsson & Tropp in the :math:`H_R` inner product
(Villa, Petra & Ghattas, hIPPYlib, 2021). Then

.. math::

    P = H_R + H_R U \Lambda U^T H_R, \qquad
    P^{-1} = H_R^{-1} - U D U^T, \quad D = \mathrm{diag}\Big(\frac{\lambda_i}{1+\lambda_i}\Big),

with the eigenvalues clipped at zero so that :math:`P` stays SPD where :math:`H` is not.
"""

import numpy as np

from pdeopt.checks import integer
from pdeopt.control_vec import array_to_vec, vec_to_array
from pdeopt.solvers.preconditioners.base import TrustRegionPC
from pdeopt.solvers.preconditioners.regularizer import RegularizerPC

__all__ = ["LowRankPC"]


class LowRankPC(TrustRegionPC):
    r"""Apply :math:`P^{-1} = H_R^{-1} - UDU^T`, rebuilt at accepted iterates.

    Parameters
    ----------
    regularizer
        The :class:`~pdeopt.problem.regularizer.Regularizer` (:math:`\alpha > 0`).
    rank, oversampling
        :math:`r` eigenpairs kept from :math:`r + p` random probes (:math:`2(r+p)` Hessian
        actions per build).
    rebuild_every
        Rebuild at every this many accepted iterates (1: every one).
    seed
        Seed of the random probes; build j draws from ``(seed, j)``, the same on every rank
        and after a resume.
    solver_parameters
        For the inner :class:`RegularizerPC` solve, under the prefix ``pc_lowrank_`` nested
        in the trust region's (``-pdeopt_tr_pc_lowrank_pc_type``).
    """

    prefix = "pc_lowrank_"

    def __init__(self, regularizer, rank: int = 20, oversampling: int = 10,
                 rebuild_every: int = 1, seed: int = 0, solver_parameters: dict | None = None):
        super().__init__()
        rank = integer("LowRankPC", "rank", rank, low=1)
        oversampling = integer("LowRankPC", "oversampling", oversampling, low=0)
        rebuild_every = integer("LowRankPC", "rebuild_every", rebuild_every, low=1)
        seed = integer("LowRankPC", "seed", seed, low=0)
        self.regularizer = regularizer
        self.rank, self.oversampling, self.rebuild_every = rank, oversampling, rebuild_every
        self.seed = seed
        self.R = RegularizerPC(regularizer, solver_parameters)
        self.R.prefix = self.prefix
        self.U = np.zeros((regularizer.layout.size, 0))
        self.d = np.zeros(0)
        self.eigenvalues = np.zeros(0)
        self._accepted = 0

    def initialize(self, pc):
        self.R.setUp(pc)
        A, _ = pc.getOperators()
        self.comm = A.getComm().tompi4py()
        self._x, self._y = A.createVecs()

    def _R_solve(self, Y):
        """:math:`H_R^{-1}Y` column by column (each an inner PETSc solve)."""
        out = np.empty_like(Y)
        n = Y.shape[0]
        for j in range(Y.shape[1]):
            array_to_vec(Y[:, j], self._x)
            self.R.apply(None, self._x, self._y)
            out[:, j] = vec_to_array(self._y, n, self.comm)
        return out

    def accept(self, theta, gradient, Jhat):
        """Recompute the eigenpairs at ``theta`` (every ``rebuild_every`` accepted iterates)."""
        self._accepted += 1
        if (self._accepted - 1) % self.rebuild_every:
            return
        n, k = Jhat.size, min(self.rank + self.oversampling, Jhat.size)
        HR = self.regularizer.hessian_action

        def Hd(X):
            return np.column_stack([Jhat.hessian_action(theta, X[:, j]) - HR(X[:, j])
                                    for j in range(X.shape[1])])

        Omega = np.random.default_rng([self.seed, self._accepted]).standard_normal((n, k))
        Ybar = self._R_solve(Hd(Omega))
        # An H_R-orthonormal basis of the sampled range, Q^T H_R Q = I, by the eigenvectors of
        # the Gram matrix (twice, for stability); directions below round-off are dropped, as
        # H_d has low rank when there are few samples.
        Q = Ybar
        for _ in range(2):
            G = Q.T @ np.column_stack([HR(Q[:, j]) for j in range(Q.shape[1])])
            s, W = np.linalg.eigh(0.5 * (G + G.T))
            keep = s > 1e-12 * s.max()
            Q = Q @ (W[:, keep] / np.sqrt(s[keep]))
        T = Q.T @ Hd(Q)
        lam, V = np.linalg.eigh(0.5 * (T + T.T))
        order = np.argsort(lam)[::-1][:self.rank]
        self.eigenvalues = lam[order]
        lam = np.maximum(self.eigenvalues, 0.0)
        self.U, self.d = Q @ V[:, order], lam / (1.0 + lam)

    def apply(self, pc, x, y):
        """:math:`y = H_R^{-1}x - UDU^Tx`."""
        self.R.apply(pc, x, y)
        n = self.U.shape[0]
        if self.d.size:
            xa = vec_to_array(x, n, self.comm)
            corr = self.U @ (self.d * (self.U.T @ xa))
            ya = vec_to_array(y, n, self.comm) - corr
            array_to_vec(ya, y)

    def settings(self):
        return {"rank": self.rank, "oversampling": self.oversampling,
                "rebuild_every": self.rebuild_every, "seed": self.seed,
                "solver_parameters": self.R.solver_parameters or {}}

    def state(self):
        """The eigenpairs and the build counter."""
        return {"lowrank_U": self.U, "lowrank_d": self.d,
                "lowrank_eigenvalues": self.eigenvalues,
                "lowrank_accepted": np.array(self._accepted)}

    def restore(self, arrays):
        """The eigenpairs and the build counter of :meth:`state`."""
        self.U, self.d = arrays["lowrank_U"], arrays["lowrank_d"]
        self.eigenvalues = arrays["lowrank_eigenvalues"]
        self._accepted = int(arrays["lowrank_accepted"])
