r"""A limited-memory BFGS preconditioner: PETSc's LMVM Mat updated at every accepted iterate."""

from types import MappingProxyType

import numpy as np
from petsc4py import PETSc

from pdeopt.checks import instance
from pdeopt.control_vec import array_to_vec
from pdeopt.options import configure, inserted
from pdeopt.solvers.preconditioners.base import TrustRegionPC

__all__ = ["LMVMPC"]


class LMVMPC(TrustRegionPC):
    r"""Apply :math:`B_k^{-1}`, the L-BFGS inverse-Hessian approximation built from the pairs
    :math:`(s_j, y_j) = (\theta_{j+1}-\theta_j,\ g_{j+1}-g_j)` of the accepted iterates.

    :math:`B_k^{-1}` is PETSc's ``MatSolve`` on an LMVM matrix (``lmvmbfgs`` by default, any
    ``mat_type`` of the LMVM family through the options). Curvature pairs with
    :math:`s^Ty \le 0`, which occur away from a minimum, are rejected by PETSc, so
    :math:`B_k` stays SPD.

    Parameters
    ----------
    solver_parameters
        Options of the LMVM Mat, e.g. ``{"mat_lmvm_hist_size": 10}``, under the prefix
        ``pc_lmvm_`` nested in the KSP's (``-pdeopt_tr_pc_lmvm_mat_lmvm_hist_size``).
    """

    DEFAULT_SOLVER_PARAMETERS = MappingProxyType({"mat_type": "lmvmbfgs",
                                                  "mat_lmvm_hist_size": 10})

    prefix = "pc_lmvm_"

    def __init__(self, solver_parameters: dict | None = None):
        super().__init__()
        instance("LMVMPC", "solver_parameters", solver_parameters or {}, dict,
                 "options of the LMVM Mat as a dict")
        self.solver_parameters = solver_parameters
        self.B = None
        self.history_size = None
        self.pairs = []  # the (theta, g) of the accepted iterates, for checkpoints

    def initialize(self, pc):
        A, _ = pc.getOperators()
        B = PETSc.Mat().create(comm=A.getComm())
        B.setSizes(A.getSizes())
        self.B = configure(B, self.DEFAULT_SOLVER_PARAMETERS, self.solver_parameters,
                           self.full_prefix)
        with inserted(self.B):  # the history size in force, command line included
            self.history_size = PETSc.Options(self.full_prefix).getInt(
                "mat_lmvm_hist_size", self.DEFAULT_SOLVER_PARAMETERS["mat_lmvm_hist_size"])
        self._x, self._g = A.createVecs()
        for theta, g in self.pairs:
            self._update(theta, g)

    def _update(self, theta, g):
        array_to_vec(theta, self._x)
        array_to_vec(g, self._g)
        self.B.updateLMVM(self._x, self._g)

    def accept(self, theta, gradient, Jhat):
        """Add the accepted iterate to the history."""
        if self.pairs and np.array_equal(self.pairs[-1][0], theta):
            return  # a resumed run revisits its last iterate
        # m pairs (s, y) come from the last m + 1 iterates
        keep = self.history_size + 1
        self.pairs = (self.pairs + [(np.array(theta), np.array(gradient))])[-keep:]
        self._update(theta, gradient)

    def apply(self, pc, x, y):
        """:math:`y = B_k^{-1}x`."""
        self.B.solve(x, y)

    def settings(self):
        return {"solver_parameters": self.solver_parameters or {},
                "history_size": self.history_size}

    def state(self):
        """The stored pairs' iterates and gradients."""
        return {f"lmvm_pair_{i}_{k}": v for i, pair in enumerate(self.pairs)
                for k, v in zip(("theta", "gradient"), pair)}

    def restore(self, arrays):
        """The pairs of :meth:`state`, replayed into the LMVM Mat."""
        n = sum(1 for k in arrays if k.startswith("lmvm_pair_") and k.endswith("_theta"))
        self.pairs = [(arrays[f"lmvm_pair_{i}_theta"], arrays[f"lmvm_pair_{i}_gradient"])
                      for i in range(n)]
        if self.B is not None:
            self.B.resetLMVM()
            for theta, g in self.pairs:
                self._update(theta, g)
