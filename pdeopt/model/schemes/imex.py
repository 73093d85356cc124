"""The implicit-explicit scheme: explicit network forcing, implicit diffusion (IMEXnet)."""

from types import MappingProxyType

import numpy as np
import firedrake as fd
from petsc4py import PETSc

from pdeopt.errors import ConvergenceError
from pdeopt.options import configure, inserted, reason_name
from pdeopt.model.forcing import ResNetForcing
from pdeopt.model.schemes.scheme import Scheme

__all__ = ["IMEXScheme"]


class IMEXScheme(Scheme):
    r"""IMEX network (Haber et al. 2019): one PETSc KSP solve per layer,

    .. math:: (M + hL)\,u_{k+1} = M\big(u_k + h\,\sigma(K_k u_k + b_k)\big),
       \qquad L = \kappa h_x^2 \int \nabla u\cdot\nabla v\,\mathrm{d}x,

    with :math:`M` the lumped mass and :math:`\kappa` a diffusivity in pixel units. Writing
    :math:`S = (M + hL)^{-1}M`, the step is :math:`u_{k+1} = S w_k`,
    :math:`w_k = u_k + hF(u_k)`; its adjoint is :math:`\bar w_k = M (M + hL)^{-1} \lambda_{k+1}`
    (:math:`M + hL` is symmetric), :math:`\lambda_k = \bar w_k + hF_u^T\bar w_k`. The operator
    does not depend on the controls, so it is factorised once and every layer, adjoint and
    second-order adjoint solve reuses it for the whole batch × channels block at once
    (``KSPMatSolve``).

    Parameters
    ----------
    operators
        The assembled :class:`~pdeopt.model.operators.OperatorSet`.
    activation
        A :math:`C^2` :class:`~pdeopt.model.activation.Activation`.
    step
        The time step :math:`h = T/N`.
    diffusivity
        :math:`\kappa`.
    solver_parameters
        PETSc options for the solve with :math:`M + hL`, default a MUMPS Cholesky factorisation.
    options_prefix
        Prefix for command-line overrides, e.g. ``-pdeopt_imex_pc_type gamg``.
    """

    name = "imex"
    DEFAULT_SOLVER_PARAMETERS = MappingProxyType({
        "ksp_type": "preonly", "pc_type": "cholesky", "pc_factor_mat_solver_type": "mumps"})

    def __init__(self, operators, activation, step, *, diffusivity=1.0, solver_parameters=None,
                 options_prefix="pdeopt_imex_"):
        super().__init__(ResNetForcing(operators, activation), step)
        self.diffusivity = float(diffusivity)
        V = operators.space
        mesh = V.mesh()
        hc = fd.CellDiameter(mesh) / np.sqrt(2.0)
        u, v = fd.TrialFunction(V), fd.TestFunction(V)
        a = (u * v * fd.dx(scheme="KMV", degree=1)
             + self.h * self.diffusivity * hc**2 * fd.inner(fd.grad(u), fd.grad(v)) * fd.dx(degree=2))
        self.A = fd.assemble(a, mat_type="aij").petscmat
        self.m = operators.mass[:, None, None]
        self.ksp = PETSc.KSP().create(comm=mesh.comm)
        self.ksp.setOperators(self.A)
        configure(self.ksp, self.DEFAULT_SOLVER_PARAMETERS, solver_parameters, options_prefix)
        self.comm = mesh.comm

    def _solve(self, rhs, k, what):
        r"""Return :math:`(M + hL)^{-1}` ``rhs`` for a block ``(n, ...)``: one KSPMatSolve."""
        shape = rhs.shape
        n, p = shape[0], int(np.prod(shape[1:]))
        B = np.asfortranarray(rhs.reshape(n, p))
        X = np.empty_like(B, order="F")
        sizes = ((n, PETSc.DETERMINE), (PETSc.DECIDE, p))
        Bm = PETSc.Mat().createDense(sizes, array=B.ravel(order="F"), comm=self.comm)
        Xm = PETSc.Mat().createDense(sizes, array=X.ravel(order="F"), comm=self.comm)
        with inserted(self.ksp):
            self.ksp.matSolve(Bm, Xm)
        reason = self.ksp.getConvergedReason()
        if reason < 0:
            raise ConvergenceError(
                f"IMEX {what} solve in layer {k} diverged with PETSc reason "
                f"{reason_name(PETSc.KSP.ConvergedReason, reason)}; choose a robust solver through "
                f"-{self.ksp.getOptionsPrefix()}pc_type (default: Cholesky by MUMPS).")
        Bm.destroy()
        Xm.destroy()
        return np.ascontiguousarray(X).reshape(shape)

    def step(self, k, state, th):
        (u,) = state
        F, z = self.forcing(u, th)
        F *= self.h
        F += u
        F *= self.m
        return (self._solve(F, k, "forward"),), z

    def step_tlm(self, k, state, record, th, state_dot, th_dot):
        F_dot, z_dot = self.forcing.tlm(state[0], record, th, state_dot[0], th_dot)
        F_dot *= self.h
        F_dot += state_dot[0]
        F_dot *= self.m
        return (self._solve(F_dot, k, "tangent-linear"),), z_dot

    def step_adjoint(self, k, state, record, th, lam_next):
        w_bar = self.m * self._solve(lam_next[0], k, "adjoint")
        u_bar, th_bar = self.forcing.adjoint(state[0], record, th, self.h * w_bar)
        u_bar += w_bar
        return (u_bar,), th_bar

    def step_soa(self, k, state, record, th, state_dot, tlm_record, th_dot, lam_next, mu_next):
        c = lam_next[0].shape[-1]
        both = self.m * self._solve(np.concatenate([lam_next[0], mu_next[0]], axis=-1), k,
                                    "second-order adjoint")
        w_bar, w_hat = both[..., :c], both[..., c:]
        u_hat, th_hat = self.forcing.soa(state[0], record, th, state_dot[0], tlm_record, th_dot,
                                         self.h * w_bar, self.h * w_hat)
        u_hat += w_hat
        return (u_hat,), th_hat

