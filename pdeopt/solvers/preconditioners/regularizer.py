r"""The regulariser's Hessian as preconditioner:
:math:`P = H_R = \alpha I + \tfrac\beta h\,\Delta_k\otimes I`."""

from petsc4py import PETSc

from pdeopt.checks import instance
from pdeopt.errors import InputError
from pdeopt.problem.regularizer import Regularizer
from pdeopt.options import DIRECT_SOLVER_PARAMETERS, configure, inserted
from pdeopt.solvers.preconditioners.base import TrustRegionPC

__all__ = ["RegularizerPC"]


class RegularizerPC(TrustRegionPC):
    r"""Apply :math:`H_R^{-1}`, with :math:`H_R` assembled as a PETSc AIJ matrix.

    :math:`H_R` is SPD for :math:`\alpha > 0` and block-tridiagonal in the layer index; it is
    solved by an inner PETSc KSP (default: a Cholesky factorisation by MUMPS, done once).
    The trust region is then :math:`\|p\|_{H_R} \le \Delta`, the norm in which the
    regulariser measures the controls.

    Parameters
    ----------
    regularizer
        The :class:`~pdeopt.problem.regularizer.Regularizer`.
    solver_parameters
        Options of the inner KSP, under the prefix ``pc_regularizer_`` nested in the trust
        region's (``-pdeopt_tr_pc_regularizer_pc_type``).
    """

    DEFAULT_SOLVER_PARAMETERS = DIRECT_SOLVER_PARAMETERS

    prefix = "pc_regularizer_"

    def __init__(self, regularizer, solver_parameters: dict | None = None):
        super().__init__()
        instance("RegularizerPC", "regularizer", regularizer, Regularizer,
                 "pdeopt.Regularizer(model, alpha > 0)", error=InputError)
        instance("RegularizerPC", "solver_parameters", solver_parameters or {}, dict,
                 "options of the inner KSP as a dict")
        if regularizer.alpha <= 0:
            raise InputError("RegularizerPC needs alpha > 0: with alpha = 0 the regulariser's "
                             "Hessian is singular (constant-in-time controls).")
        self.regularizer = regularizer
        self.solver_parameters = solver_parameters
        self.ksp = None

    def initialize(self, pc):
        A, _ = pc.getOperators()
        comm = A.getComm()
        rows, cols, vals = self.regularizer.hessian_coo()
        n = self.regularizer.layout.size
        (m, _), _ = A.getSizes()
        H = PETSc.Mat().create(comm=comm)
        H.setSizes(((m, n), (m, n)))
        H.setType(PETSc.Mat.Type.AIJ)
        rstart, rend = A.getOwnershipRange()
        own = (rows >= rstart) & (rows < rend)  # each rank assembles its own rows
        H.setPreallocationCOO(rows[own].astype(PETSc.IntType), cols[own].astype(PETSc.IntType))
        H.setValuesCOO(vals[own], addv=PETSc.InsertMode.ADD_VALUES)
        H.assemble()
        ksp = PETSc.KSP().create(comm=comm)
        ksp.setOperators(H)
        self.ksp = configure(ksp, self.DEFAULT_SOLVER_PARAMETERS, self.solver_parameters,
                             self.full_prefix)

    def settings(self):
        return {"solver_parameters": self.solver_parameters or {}}

    def apply(self, pc, x, y):
        """:math:`y = H_R^{-1}x`."""
        with inserted(self.ksp):
            self.ksp.solve(x, y)
