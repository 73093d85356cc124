"""pdeopt's adapter to PETSc TAO: any reduced functional, any TAO method, the iterate kept.

pyadjoint's ``TAOSolver`` looks up ``PETSc.TAO.Reason`` (petsc4py 3.26 has
``PETSc.TAO.ConvergedReason``) and so crashes on any stop but convergence, losing the
iterate (DESIGN.md §3); this adapter reports every reason and always returns the last iterate.
"""

import time
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from petsc4py import PETSc

from pdeopt.errors import ConvergenceError, InputError
from pdeopt.options import configure, inserted, reason_name
from pdeopt.parallel import print0
from pdeopt.problem.control_array import ControlArray, array_to_vec, vec_to_array
from pdeopt.solvers.reduced_hessian import ReducedHessian

__all__ = ["TAOSolver", "TAOResult"]


@dataclass
class TAOResult:
    """What a TAO solve produced.

    Attributes
    ----------
    theta
        The last iterate (controls), whatever the reason for stopping.
    reason
        PETSc's converged reason, e.g. ``CONVERGED_GATOL`` or ``DIVERGED_MAXITS``.
    converged
        Whether TAO reports convergence (a positive reason).
    iterations, objective, gradient_norm
        At the last iterate.
    history
        One dict per iteration: ``iteration``, ``objective``, ``gradient_norm``, ``seconds``.
    """

    theta: np.ndarray
    reason: str
    converged: bool
    iterations: int
    objective: float
    gradient_norm: float
    history: list = field(default_factory=list)


class TAOSolver:
    r"""Minimise a reduced functional :math:`\hat J` with PETSc TAO.

    The controls are a distributed PETSc Vec, replicated as arrays on every rank; TAO sees the objective, the
    gradient and, for Newton methods (``nls``, ``ntr``, ``bntr``), the Hessian as a PETSc
    Python Mat whose action is one tangent-linear and one second-order adjoint sweep.

    Parameters
    ----------
    rf
        A :class:`~pdeopt.problem.reduced_functional.ReducedFunctional` (or anything with
        ``objective``, ``gradient``, ``hessian_action``, ``size`` and ``comm``).
    solver_parameters
        TAO options without the prefix, e.g. ``{"tao_type": "lmvm", "tao_max_it": 100}``.
    options_prefix
        Prefix for command-line overrides (``-pdeopt_tao_tao_type nls``).
    monitor
        Print one line per iteration on rank 0.
    callback
        ``callback(iteration, theta, objective, gradient_norm)`` after every iteration.
    gauss_newton
        Give Newton methods the Gauss–Newton matrix (SPD) instead of the exact Hessian.
    """

    DEFAULT_SOLVER_PARAMETERS = MappingProxyType({
        "tao_type": "lmvm", "tao_max_it": 100, "tao_gatol": 1e-7, "tao_grtol": 0.0,
        "tao_gttol": 0.0})

    def __init__(self, rf, solver_parameters=None, options_prefix="pdeopt_tao_", monitor=True,
                 callback=None, gauss_newton=False):
        self.rf, self.monitor, self.callback = rf, monitor, callback
        self.comm = rf.comm
        tao = PETSc.TAO().create(comm=self.comm)
        self._x = ControlArray(rf.point, comm=self.comm).create_vec()
        tao.setSolution(self._x)
        tao.setObjectiveGradient(self._objective_gradient, self._x.duplicate())
        self._H = ReducedHessian.petsc_mat(rf, self._x, gauss_newton=gauss_newton)
        tao.setHessian(self._hessian, self._H)
        tao.setMonitor(self._monitor)
        self.tao = configure(tao, self.DEFAULT_SOLVER_PARAMETERS, solver_parameters, options_prefix)
        self.history = []

    @property
    def type(self) -> str:
        """The TAO method in use."""
        return self.tao.getType()

    def _array(self, vec):
        return vec_to_array(vec, self.rf.size, self.comm)

    def _objective_gradient(self, tao, x, g):
        theta = self._array(x)
        J = self.rf.objective(theta)
        grad = self.rf.gradient(theta)
        if not np.isfinite(J) or not np.all(np.isfinite(grad)):
            # A non-finite trial point is rejected by the line search / trust region.
            J = np.inf
        array_to_vec(grad, g)
        return J

    def _hessian(self, tao, x, H, P):
        self._H.getPythonContext().set_point(self._array(x))

    def _monitor(self, tao):
        it = tao.getIterationNumber()
        f, gnorm, _ = tao.getSolutionNorm()
        entry = {"iteration": int(it), "objective": float(f), "gradient_norm": float(gnorm),
                 "seconds": time.perf_counter() - self._t0,
                 "counts": dict(getattr(self.rf, "counts", {}))}
        self.history.append(entry)
        if self.monitor:
            print0(f"{it:4d} TAO {self.type:6s} J {f:.10e} ||g|| {gnorm:.4e}", comm=self.comm)
        if self.callback is not None:
            self.callback(it, self._array(tao.getSolution()), f, gnorm)

    def solve(self, theta=None) -> TAOResult:
        """Run TAO from ``theta`` (default: the reduced functional's current point)."""
        theta = self.rf.point if theta is None else np.asarray(theta, dtype=float)
        if theta.shape != (self.rf.size,) or not np.all(np.isfinite(theta)):
            raise InputError(f"TAO needs a finite starting point of size {self.rf.size}.")
        array_to_vec(theta, self._x)
        self.history = []
        self._t0 = time.perf_counter()
        with inserted(self.tao):
            self.tao.solve()
        reason = self.tao.getConvergedReason()
        name = reason_name(PETSc.TAO.ConvergedReason, reason)
        x = self._array(self.tao.getSolution())
        f, gnorm, _ = self.tao.getSolutionNorm()
        result = TAOResult(theta=x, reason=name, converged=reason > 0,
                           iterations=int(self.tao.getIterationNumber()),
                           objective=float(f), gradient_norm=float(gnorm),
                           history=self.history)
        if reason == PETSc.TAO.ConvergedReason.DIVERGED_NAN:
            error = ConvergenceError(
                f"TAO {self.type} stopped with {name} after {result.iterations} iterations; "
                f"reduce the time step or the scale of the initial controls. The last iterate "
                f"is in the exception's .result.")
            error.result = result
            raise error
        return result
