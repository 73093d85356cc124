r"""The block diagonal of a learned Lyapunov–Krasovskii functional's loss as preconditioner:
:math:`\dot S_j = \Sigma^{-1}G_j\Sigma^{-1}/(4c_j)` node by node."""

import numpy as np

from pdeopt.analysis.lyapunov_krasovskii import LyapunovKrasovskiiLoss
from pdeopt.checks import instance
from pdeopt.errors import InputError
from pdeopt.solvers.preconditioners.base import TrustRegionPC

__all__ = ["LyapunovKrasovskiiPC"]


class LyapunovKrasovskiiPC(TrustRegionPC):
    r"""The block diagonal of the loss's Hessian as the trust region's preconditioner: at node
    :math:`j`, :math:`P_j = 4c_j\,\Sigma\otimes\Sigma`, :math:`c_j = \sum_t
    \ell_j(\tau_t)^2(w_t + \mu w_0)`, applied as :math:`\dot S_j = \Sigma^{-1}G_j
    \Sigma^{-1}/(4c_j)` (the value term's block exactly, the defect's scale; in the
    coordinates of the controls, an entry off the diagonal counting twice). It evens out the
    scales of :math:`V` across delays, which grow like :math:`1/(1 - \rho(A)^2)` towards the
    margin.

    Parameters
    ----------
    loss
        The :class:`~pdeopt.analysis.lyapunov_krasovskii.LyapunovKrasovskiiLoss`.
    """

    prefix = "pc_krasovskii_"

    def __init__(self, loss: LyapunovKrasovskiiLoss):
        super().__init__()
        instance("LyapunovKrasovskiiPC", "loss", loss, LyapunovKrasovskiiLoss,
                 remedy="build it with pdeopt.LyapunovKrasovskiiLoss", error=InputError)
        V = loss.V
        c = loss.node_curvatures()
        self._scale = 1.0 / (4.0 * np.maximum(c, 1e-14 * c.max()))
        self._Sigma_inv = np.linalg.inv(loss.Sigma)
        self._V = V
        lo, up = np.tril_indices(V.n)
        self._half = np.where(lo == up, 1.0, 0.5)

    def initialize(self, pc):
        """Nothing to set up: the blocks are fixed by the loss."""

    def apply(self, pc, x, y):
        V = self._V
        G = V.symmetric(x.getArray(readonly=True).reshape(V.nodes.size, -1) * self._half)
        Y = self._Sigma_inv @ G @ self._Sigma_inv * self._scale[:, None, None]
        y.setArray(V.lower(Y))
