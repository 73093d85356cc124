"""The implicit-explicit scheme: explicit network forcing, implicit diffusion (IMEXnet)."""

from collections.abc import Mapping

import numpy as np
import firedrake as fd
from petsc4py import PETSc

from pdeopt.checks import instance, real
from pdeopt.errors import InputError
from pdeopt.model.activation import Activation
from pdeopt.model.forcing import ResNetForcing
from pdeopt.model.operators import OperatorSet
from pdeopt.model.schemes.scheme import EulerScheme
from pdeopt.options import DIRECT_SOLVER_PARAMETERS, check_converged, configure, mat_solve

__all__ = ["IMEXScheme"]


class IMEXScheme(EulerScheme):
    r"""IMEX network (Haber et al. 2019): an Euler step, then one implicit diffusion solve,

    .. math:: (M + hL)\,u_{k+1} = M\big(u_k + h\,\sigma(K_k u_k + b_k)\big),
       \qquad L = \kappa \int \big(h_x^2\,\partial_x u\,\partial_x v
       + h_y^2\,\partial_y u\,\partial_y v\big)\,\mathrm{d}x,

    with :math:`M` the lumped mass and :math:`\kappa` a diffusivity in pixel units: each axis is
    scaled by its own pixel size, as the second differences :math:`\delta_{xx} = h_x^2 M^{-1}A_x`
    of :mod:`~pdeopt.model.operators` are, so on the image lattice :math:`L` does not depend on
    the pixels' aspect ratio. On a mesh that is not a
    :class:`~pdeopt.model.grid.PixelGrid`, :math:`h_x^2 = h_y^2 = (\operatorname{diam}K/\sqrt2)^2`
    cell by cell.

    Writing :math:`S = (M + hL)^{-1}M`, the step is :math:`u_{k+1} = S w_k` with
    :math:`w_k = u_k + hF(u_k)` the :class:`~pdeopt.model.schemes.scheme.EulerScheme` step, so
    each kernel is the Euler kernel followed (tangent) or preceded (adjoints) by :math:`S` or
    :math:`S^T = M(M + hL)^{-1}` (:math:`M + hL` is symmetric): :math:`\bar w_k = S^T
    \lambda_{k+1}`, :math:`\lambda_k = \bar w_k + hF_u^T\bar w_k`. The operator does not depend
    on the controls, so it is factorised once and every layer, adjoint and second-order adjoint
    solve reuses it for the whole batch × channels block at once (``KSPMatSolve``).

    Parameters
    ----------
    operators
        The assembled :class:`~pdeopt.model.operators.OperatorSet`.
    activation
        A :math:`C^2` :class:`~pdeopt.model.activation.Activation`.
    step
        The time step :math:`h = T/N`.
    diffusivity
        :math:`\kappa \ge 0`, finite (:math:`\kappa = 0` is forward Euler).
    solver_parameters
        PETSc options for the solve with :math:`M + hL`, default
        :data:`~pdeopt.options.DIRECT_SOLVER_PARAMETERS` (a MUMPS Cholesky factorisation).
    options_prefix
        Prefix for command-line overrides, e.g. ``-pdeopt_imex_pc_type gamg``.
    """

    name = "imex"
    DEFAULT_SOLVER_PARAMETERS = DIRECT_SOLVER_PARAMETERS

    def __init__(self, operators: OperatorSet, activation: Activation, step: float, *,
                 diffusivity: float = 1.0, solver_parameters: dict | None = None,
                 options_prefix: str = "pdeopt_imex_"):
        super().__init__(ResNetForcing(operators, activation, owner=type(self).__name__), step)
        self.diffusivity = real("IMEXScheme", "diffusivity", diffusivity, low=0.0,
                                remedy="kappa >= 0 makes M + hL positive definite (negative "
                                       "diffusion is ill-posed); 1.0 is the default")
        if not np.isfinite(self.h * self.diffusivity):
            raise InputError(f"IMEXScheme: step * diffusivity = {self.h:g} * "
                             f"{self.diffusivity:g} overflows; give a smaller step or "
                             f"diffusivity.")
        if solver_parameters is not None:
            instance("IMEXScheme", "solver_parameters", solver_parameters, Mapping,
                     remedy="give a dict of PETSc options, e.g. {'pc_type': 'gamg'}")
        instance("IMEXScheme", "options_prefix", options_prefix, str,
                 remedy="give a string ending in '_', e.g. 'pdeopt_imex_'")
        self.solver_parameters, self.options_prefix = solver_parameters, options_prefix
        V = operators.space
        mesh = V.mesh()
        u, v = fd.TrialFunction(V), fd.TestFunction(V)
        if operators.cell_size is not None:
            hx, hy = operators.cell_size
            stiffness = hx**2 * u.dx(0) * v.dx(0) + hy**2 * u.dx(1) * v.dx(1)
        else:
            hc = fd.CellDiameter(mesh) / np.sqrt(2.0)
            stiffness = hc**2 * fd.inner(fd.grad(u), fd.grad(v))
        a = u * v * fd.dx(scheme="KMV", degree=1)
        h_kappa = self.h * self.diffusivity
        if h_kappa > 0:  # UFL drops a zero term, and a form needs its integration domain
            # a Constant, not a float: one compiled kernel for every step (with_step)
            a = a + fd.Constant(h_kappa) * stiffness * fd.dx(degree=2)
        self.A = fd.assemble(a, mat_type="aij").petscmat
        self.m = operators.mass[:, None, None]
        self.ksp = PETSc.KSP().create(comm=mesh.comm)
        self.ksp.setOperators(self.A)
        configure(self.ksp, self.DEFAULT_SOLVER_PARAMETERS, solver_parameters, options_prefix)
        self.comm = mesh.comm

    def _solve(self, rhs: np.ndarray, k: int, what: str) -> np.ndarray:
        r""":math:`(M + hL)^{-1}` ``rhs`` for a block ``(n, ...)``: one KSPMatSolve."""
        X = mat_solve(self.ksp, rhs)
        where = "" if k is None else f" in layer {k}"
        check_converged(self.ksp, f"the IMEX {what} solve{where}",
                        f"choose a robust solver through -{self.ksp.getOptionsPrefix()}pc_type "
                        f"(default: Cholesky by MUMPS).")
        return X

    def with_step(self, step: float) -> "IMEXScheme":
        """The same scheme (operators, activation, diffusivity, solver options) with the
        step ``step``: a new operator :math:`M + hL`, factorised."""
        return IMEXScheme(self.forcing.ops, self.forcing.sigma, step,
                          diffusivity=self.diffusivity,
                          solver_parameters=self.solver_parameters,
                          options_prefix=self.options_prefix)

    def implicit_step(self, w: np.ndarray) -> np.ndarray:
        """:math:`S w = (M + hL)^{-1} M w` for a block ``(n, ...)``."""
        return self._S(w, None, "implicit")

    def _S(self, w, k, what):
        """:math:`S w = (M + hL)^{-1} M w`."""
        return self._solve(self.m * w, k, what)

    def _S_transpose(self, lam, k, what):
        """:math:`S^T\\lambda = M (M + hL)^{-1} \\lambda`."""
        return self.m * self._solve(lam, k, what)

    def step(self, k, state, th):
        """:math:`u_{k+1} = S(u_k + hF(u_k))`; the record is the Euler step's."""
        (w,), z = super().step(k, state, th)
        return (self._S(w, k, "forward"),), z

    def step_tlm(self, k, state, record, th, state_dot, th_dot):
        """:math:`\\dot u_{k+1} = S\\dot w_k`."""
        (w_dot,), z_dot = super().step_tlm(k, state, record, th, state_dot, th_dot)
        return (self._S(w_dot, k, "tangent-linear"),), z_dot

    def step_adjoint(self, k, state, record, th, lam_next):
        r"""The Euler adjoint of :math:`\bar w_k = S^T\lambda_{k+1}`."""
        w_bar = self._S_transpose(lam_next[0], k, "adjoint")
        return super().step_adjoint(k, state, record, th, (w_bar,))

    def step_soa(self, k, state, record, th, state_dot, tlm_record, th_dot, lam_next, mu_next):
        r"""The Euler second-order adjoint of :math:`(S^T\lambda_{k+1}, S^T\mu_{k+1})`, both
        in one solve (:math:`S` does not depend on the state or the controls)."""
        c = lam_next[0].shape[-1]
        both = self._S_transpose(np.concatenate([lam_next[0], mu_next[0]], axis=-1), k,
                                 "second-order adjoint")
        return super().step_soa(k, state, record, th, state_dot, tlm_record, th_dot,
                                (both[..., :c],), (both[..., c:],))
