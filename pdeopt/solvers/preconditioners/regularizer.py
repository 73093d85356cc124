r"""The regulariser's Hessian as preconditioner: :math:`P = H_R = \alpha I + \tfrac\beta h\,\Delta_k\otimes I`."""

from types import MappingProxyType

from petsc4py import PETSc

from pdeopt.errors import InputError
from pdeopt.options import configure, inserted

__all__ = ["RegularizerPC"]


class RegularizerPC:
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
        Options of the inner KSP.
    options_prefix
        Its prefix (``-pdeopt_pc_regularizer_pc_type``).
    """

    DEFAULT_SOLVER_PARAMETERS = MappingProxyType({
        "ksp_type": "preonly", "pc_type": "cholesky", "pc_factor_mat_solver_type": "mumps"})

    def __init__(self, regularizer, solver_parameters=None,
                 options_prefix="pdeopt_pc_regularizer_"):
        if regularizer.alpha <= 0:
            raise InputError("RegularizerPC needs alpha > 0: with alpha = 0 the regulariser's "
                             "Hessian is singular (constant-in-time controls).")
        self.regularizer = regularizer
        self.solver_parameters, self.options_prefix = solver_parameters, options_prefix
        self.ksp = None

    def setUp(self, pc):
        if self.ksp is not None:
            return
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
        self.matrix = H
        self.ksp = configure(ksp, self.DEFAULT_SOLVER_PARAMETERS, self.solver_parameters,
                             self.options_prefix)

    def apply(self, pc, x, y):
        with inserted(self.ksp):
            self.ksp.solve(x, y)
