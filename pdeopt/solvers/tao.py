"""pdeopt's adapter to PETSc TAO: any array functional, any TAO method, the iterate kept.

pyadjoint's ``TAOSolver`` looks up ``PETSc.TAO.Reason`` (petsc4py 3.26 has
``PETSc.TAO.ConvergedReason``) and so crashes on any stop but convergence, losing the
iterate (DESIGN.md §3); this adapter reports every reason and always returns the last iterate.
It takes arrays (an :class:`~pdeopt.problem.array_functional.ArrayFunctional`), not
pyadjoint's ``MinimizationProblem``.
"""

from types import MappingProxyType

import numpy as np
from petsc4py import PETSc

from pdeopt.checks import instance
from pdeopt.control_vec import array_to_vec, create_control_vec, vec_to_array
from pdeopt.errors import ConvergenceError, InputError, OptionError
from pdeopt.options import configure, inserted
from pdeopt.problem.array_functional import ArrayFunctional
from pdeopt.problem.counts import Counts
from pdeopt.solvers.monitor import Monitor
from pdeopt.solvers.reasons import TerminationReason
from pdeopt.solvers.reduced_hessian import ReducedHessian
from pdeopt.solvers.result import OptimizationResult

__all__ = ["TAOSolver"]


class TAOSolver:
    r"""Minimise :math:`\hat J` with PETSc TAO.

    The controls are a distributed PETSc Vec, replicated as arrays on every rank; TAO sees the
    objective, the gradient and, for Newton methods (``nls``, ``ntr``, ``bntr``), the Hessian
    as a PETSc Python Mat whose action is one tangent-linear and one second-order adjoint
    sweep.

    Parameters
    ----------
    Jhat
        The :class:`~pdeopt.problem.array_functional.ArrayFunctional` to minimise.
    solver_parameters
        TAO options without the prefix, e.g. ``{"tao_type": "lmvm", "tao_max_it": 100}``, and
        ``"monitor"`` to print a line per iteration on rank 0.
    options_prefix
        Prefix for command-line overrides (``-pdeopt_tao_tao_type nls``,
        ``-pdeopt_tao_monitor``).
    callback
        ``callback(iteration, theta, objective, gradient_norm)`` after every iteration.
    gauss_newton
        Give Newton methods the Gauss–Newton matrix (SPD) instead of the exact Hessian.
    """

    DEFAULT_SOLVER_PARAMETERS = MappingProxyType({
        "tao_type": "lmvm", "tao_max_it": 100, "tao_gatol": 1e-7, "tao_grtol": 0.0,
        "tao_gttol": 0.0})

    def __init__(self, Jhat: ArrayFunctional, *, solver_parameters: dict | None = None,
                 options_prefix: str = "pdeopt_tao_", callback=None,
                 gauss_newton: bool = False):
        if not isinstance(Jhat, ArrayFunctional):
            raise InputError(f"TAOSolver minimises an ArrayFunctional (e.g. "
                             f"pdeopt.ReducedFunctional), not a {type(Jhat).__name__}.")
        instance("TAOSolver", "solver_parameters", solver_parameters or {}, dict,
                 "TAO options as a dict")
        instance("TAOSolver", "options_prefix", options_prefix, str, "e.g. 'pdeopt_tao_'")
        instance("TAOSolver", "gauss_newton", gauss_newton, bool)
        if callback is not None and not callable(callback):
            raise OptionError(f"TAOSolver: callback={callback!r} must be callable, "
                              f"callback(iteration, theta, objective, gradient_norm).")
        self.Jhat, self.comm, self.callback = Jhat, Jhat.comm, callback
        self.monitor, solver_parameters = Monitor.from_options(self.comm, solver_parameters,
                                                               options_prefix)
        tao = PETSc.TAO().create(comm=self.comm)
        self._x = create_control_vec(Jhat.size, self.comm)
        tao.setSolution(self._x)
        tao.setObjectiveGradient(self._objective_gradient, self._x.duplicate())
        action = Jhat.gauss_newton_action if gauss_newton else Jhat.hessian_action
        self._H = ReducedHessian.petsc_mat(action, self._x)
        tao.setHessian(self._hessian, self._H)
        tao.setMonitor(self._monitor)
        self.tao = configure(tao, self.DEFAULT_SOLVER_PARAMETERS, solver_parameters,
                             options_prefix)

    @property
    def type(self) -> str:
        """The TAO method in use."""
        return self.tao.getType()

    def _array(self, vec):
        return vec_to_array(vec, self.Jhat.size, self.comm)

    def _objective_gradient(self, tao, x, g):
        theta = self._array(x)
        if not np.all(np.isfinite(theta)):  # a line search that overflowed: reject the point
            g.set(0.0)
            return np.inf
        J = self.Jhat.objective(theta)
        grad = self.Jhat.gradient(theta)
        if not np.isfinite(J) or not np.all(np.isfinite(grad)):
            # A non-finite trial point is rejected by the line search / trust region.
            J = np.inf
        array_to_vec(grad, g)
        return J

    def _hessian(self, tao, x, H, P):
        self._H.getPythonContext().set_point(self._array(x))

    def _counts(self) -> Counts:
        return self.Jhat.counts - self._counts0

    def _monitor(self, tao):
        it = tao.getIterationNumber()
        f, gnorm, _ = tao.getSolutionNorm()
        self.monitor.record(f"{it:4d} TAO {self.type:6s} J {f:.10e} ||g|| {gnorm:.4e}",
                            iteration=int(it), objective=float(f), gradient_norm=float(gnorm),
                            counts=self._counts().as_dict())
        if self.callback is not None:
            self.callback(it, self._array(tao.getSolution()), f, gnorm)

    def solve(self, theta=None) -> OptimizationResult:
        """Run TAO from ``theta`` (default: the functional's current point)."""
        theta = self.Jhat.check_point(self.Jhat.point if theta is None else theta)
        array_to_vec(theta, self._x)
        self.monitor = Monitor(self.comm, self.monitor.enabled)
        self._counts0 = self.Jhat.counts
        with inserted(self.tao):
            self.tao.solve()
        reason = TerminationReason.from_tao(self.tao.getConvergedReason())
        f, gnorm, _ = self.tao.getSolutionNorm()
        result = OptimizationResult(theta=self._array(self.tao.getSolution()), reason=reason,
                                    iterations=int(self.tao.getIterationNumber()),
                                    objective=float(f), gradient_norm=float(gnorm),
                                    counts=self._counts(), history=self.monitor.history)
        self.monitor.note(f"TAOSolver {self.type}: {reason.name} ({reason.message}) after "
                          f"{result.iterations} iterations")
        if reason is TerminationReason.DIVERGED_NAN:
            error = ConvergenceError(
                f"TAO {self.type} stopped with {reason.name} after {result.iterations} "
                f"iterations; reduce the time step or the scale of the initial controls. The "
                f"last iterate is in the exception's .result.")
            error.result = result
            raise error
        return result
