r"""The trust-region subproblem :math:`\min_p g^T p + \tfrac12 p^T H p,\ \|p\|_P \le \Delta`,
as a strategy object.

:class:`KSPSubproblem` solves it with a PETSc KSP of the ``stcg``/``nash``/``gltr`` family in
the norm of a preconditioner; :class:`CappedCGSubproblem` with capped CG and, at first-order
points, the minimum eigenvalue oracle, so that the method leaves saddle points.
"""

import abc
import ctypes
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from petsc4py import PETSc

from pdeopt.checks import integer, real
from pdeopt.control_vec import array_to_vec, vec_to_array
from pdeopt.errors import ConvergenceError, OptionError
from pdeopt.options import configure, inserted, reason_name
from pdeopt.solvers.capped_cg import capped_cg
from pdeopt.solvers.eigenvalue_oracle import minimum_eigenvalue_oracle

__all__ = ["Step", "Certificate", "Subproblem", "KSPSubproblem", "CappedCGSubproblem"]

# KSPCGSetRadius and KSPCGGetNormD have no petsc4py binding: call PETSc's C API on the handle.
_libpetsc = ctypes.CDLL(PETSc.__file__)
_libpetsc.KSPCGSetRadius.argtypes = [ctypes.c_void_p, ctypes.c_double]
_libpetsc.KSPCGGetNormD.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_double)]


@dataclass(frozen=True)
class Step:
    r"""A trial step :math:`p` and what its solve reports.

    Attributes
    ----------
    p
        The step (replicated).
    predicted
        The model's predicted reduction :math:`-m(p)`.
    norm
        :math:`\|p\|_P`, in the trust region's norm.
    iterations
        Krylov (or Lanczos) iterations spent.
    reason
        The solver's reason, e.g. ``CONVERGED_NEG_CURVE``, ``CAPPED_CG_SOL``, ``ORACLE_NC``.
    failed
        The solve diverged for a reason other than its iteration limit.
    """

    p: np.ndarray
    predicted: float
    norm: float
    iterations: int
    reason: str
    failed: bool = False


@dataclass(frozen=True)
class Certificate:
    """What a subproblem says at a point that meets the gradient tests.

    Attributes
    ----------
    second_order
        :math:`\\lambda_{\\min}(H) \\ge -\\epsilon` is certified.
    escape
        A step along negative curvature to take instead of stopping, or ``None``.
    iterations
        Iterations spent on the certificate.
    message
        A line for the monitor.
    """

    second_order: bool = False
    escape: Step | None = None
    iterations: int = 0
    message: str = ""


class Subproblem(abc.ABC):
    """A solver of the trust-region subproblem, set up once by the trust region."""

    #: A short name for the monitor.
    name: str = ""

    @abc.abstractmethod
    def setup(self, H: PETSc.Mat, preconditioner, solver_parameters: dict | None,
              options_prefix: str) -> None:
        """Prepare to solve with the model Hessian ``H`` (a PETSc Python Mat)."""

    @abc.abstractmethod
    def solve(self, action, g: np.ndarray, radius: float, rtol: float | None,
              max_it: int | None = None) -> Step:
        r"""The step for the gradient ``g`` within ``radius``; ``action(v)`` is :math:`Hv` (and
        ``H``'s point is set); ``rtol`` is the forcing term (``None``: the solver's own);
        at most ``max_it`` iterations (``None``: the solver's own limit)."""

    def initial_radius(self, g: np.ndarray) -> float:
        r""":math:`\Delta_0` when none is given: :math:`\|g\|` (Euclidean)."""
        return float(np.linalg.norm(g)) or 1.0

    def certify(self, action, g: np.ndarray, radius: float, iteration: int) -> Certificate:
        """Whether the point is second-order stationary, or a way out (none: first order)."""
        return Certificate()

    @property
    def rtol(self) -> float | None:
        """The solver's own relative tolerance (for a fixed forcing term)."""
        return None

    def fingerprint(self) -> dict:
        """What a checkpoint records of this solver (the settings that change the path)."""
        return {"name": self.name}


class KSPSubproblem(Subproblem):
    r"""Steihaug–Toint CG (``stcg``), ``nash`` or ``gltr`` from PETSc, in the norm
    :math:`\|p\|_P` of the preconditioner (Euclidean without one).

    CG stops at the boundary, on negative curvature (following it to the boundary) or at the
    relative residual ``rtol``. The radius and the step's norm go through PETSc's
    ``KSPCGSetRadius`` and ``KSPCGGetNormD``; the predicted reduction is
    ``KSPCGGetObjFcn``'s :math:`-m(p)`.

    The KSP takes the trust region's ``solver_parameters`` and ``options_prefix``
    (``-pdeopt_tr_ksp_type nash``).
    """

    DEFAULT_SOLVER_PARAMETERS = MappingProxyType({
        "ksp_type": "stcg", "ksp_max_it": 50, "ksp_rtol": 0.5, "ksp_atol": 0.0})
    KSP_TYPES = ("stcg", "nash", "gltr")

    def __init__(self):
        self.ksp = None

    @property
    def name(self) -> str:
        return self.ksp.getType() if self.ksp is not None else "ksp"

    @property
    def rtol(self) -> float:
        """``ksp_rtol`` as configured (the forcing term changes the KSP's own)."""
        return self._rtol

    def setup(self, H, preconditioner, solver_parameters, options_prefix):
        ksp = PETSc.KSP().create(comm=H.getComm())
        ksp.setOperators(H)
        pc = ksp.getPC()
        if preconditioner is None:
            pc.setType(PETSc.PC.Type.NONE)
        else:
            pc.setType(PETSc.PC.Type.PYTHON)
            pc.setPythonContext(preconditioner)
        self.ksp = configure(ksp, self.DEFAULT_SOLVER_PARAMETERS, solver_parameters,
                             options_prefix)
        if self.ksp.getType() not in self.KSP_TYPES:
            raise OptionError(f"the trust-region subproblem needs ksp_type in {self.KSP_TYPES}, "
                              f"got {self.ksp.getType()!r}.")
        if self.ksp.getPC().getType() not in ("none", "python"):
            raise OptionError("give the preconditioner as an object (preconditioner=...), "
                              "not as pc_type: it also defines the trust-region norm.")
        self._rtol, self._max_it = (self.ksp.getTolerances()[i] for i in (0, 3))
        self._rhs, self._p = H.createVecs()

    def fingerprint(self):
        return {"name": self.name, "ksp_max_it": self._max_it,
                "ksp_rtol": self._rtol}

    def initial_radius(self, g):
        r""":math:`\|P^{-1}g\|_P = (g^T P^{-1} g)^{1/2}` (the Euclidean :math:`\|g\|` without
        a preconditioner)."""
        array_to_vec(g, self._rhs)
        z = self._rhs.duplicate()
        self.ksp.getPC().apply(self._rhs, z)
        return float(np.sqrt(max(self._rhs.dot(z), 0.0))) or 1.0

    def solve(self, action, g, radius, rtol, max_it=None):
        _, atol, dtol, _ = self.ksp.getTolerances()
        self.ksp.setTolerances(rtol=self._rtol if rtol is None else rtol, atol=atol, divtol=dtol,
                               max_it=self._max_it if max_it is None else min(self._max_it,
                                                                              max_it))
        if _libpetsc.KSPCGSetRadius(self.ksp.handle, radius):
            raise ConvergenceError(f"KSPCGSetRadius({radius}) failed for KSP type "
                                   f"{self.ksp.getType()}.")
        array_to_vec(-g, self._rhs)
        self._p.zeroEntries()
        with inserted(self.ksp):
            self.ksp.solve(self._rhs, self._p)
        code = self.ksp.getConvergedReason()
        reason = reason_name(PETSc.KSP.ConvergedReason, code)
        norm = ctypes.c_double()
        if _libpetsc.KSPCGGetNormD(self.ksp.handle, ctypes.byref(norm)):
            raise ConvergenceError(f"KSPCGGetNormD failed for KSP type {self.ksp.getType()}.")
        return Step(p=vec_to_array(self._p, g.size, self._p.getComm().tompi4py()),
                    predicted=-self.ksp.getCGObjectiveValue(), norm=norm.value,
                    iterations=self.ksp.getIterationNumber(), reason=reason,
                    failed=code < 0 and code != PETSc.KSP.ConvergedReason.DIVERGED_MAX_IT)


class CappedCGSubproblem(Subproblem):
    r"""Capped CG on :math:`(H + 2\epsilon I)d = -g` with the minimum eigenvalue oracle: the
    trust-region Newton-CG of Curtis, Robinson, Royer & Wright (2021).

    Capped CG (:func:`~pdeopt.solvers.capped_cg.capped_cg`, Royer, O'Neill & Wright 2020)
    returns a solution, cut at the boundary, or a direction of curvature below
    :math:`-\epsilon`, followed to the boundary downhill. Where the gradient tests are met,
    the oracle (:func:`~pdeopt.solvers.eigenvalue_oracle.minimum_eigenvalue_oracle`) either
    certifies :math:`\lambda_{\min}(H) \ge -\epsilon` (``CONVERGED_SECOND_ORDER``) or gives a
    direction of curvature :math:`\le -\epsilon/2` that the next step follows to the boundary.
    Euclidean norm, no preconditioner, and the whole batch's Hessian.

    Parameters
    ----------
    epsilon, zeta
        :math:`\epsilon` (the curvature tolerance :math:`\epsilon_H`) and :math:`\zeta`.
    max_it
        Most capped-CG iterations per subproblem.
    oracle_max_it, oracle_delta, oracle_seed
        The oracle's most Lanczos steps, its failure probability :math:`\delta` and the seed
        of its random starts (the iteration number is added). When ``oracle_max_it`` stops
        it before its bound :math:`j_{\max}`, the solve ends first-order only
        (``CONVERGED_GATOL`` or ``GRTOL``).
    """

    name = "ccg"

    def __init__(self, epsilon: float = 1e-6, zeta: float = 0.5, max_it: int = 50,
                 oracle_max_it: int = 100, oracle_delta: float = 0.01, oracle_seed: int = 0):
        name, E = "CappedCGSubproblem", OptionError
        self.epsilon = real(name, "epsilon", epsilon, low=0, low_open=True, error=E)
        self.zeta = real(name, "zeta", zeta, low=0, high=1, low_open=True, high_open=True,
                         error=E)
        self.max_it = integer(name, "max_it", max_it, low=1, error=E)
        self.oracle_max_it = integer(name, "oracle_max_it", oracle_max_it, low=1, error=E)
        self.oracle_delta = real(name, "oracle_delta", oracle_delta, low=0, high=1,
                                 low_open=True, high_open=True, error=E)
        self.oracle_seed = integer(name, "oracle_seed", oracle_seed, low=0, error=E)

    def fingerprint(self):
        return {"name": self.name, "epsilon": self.epsilon, "zeta": self.zeta,
                "max_it": self.max_it, "oracle_max_it": self.oracle_max_it,
                "oracle_delta": self.oracle_delta, "oracle_seed": self.oracle_seed}

    def setup(self, H, preconditioner, solver_parameters, options_prefix):
        if preconditioner is not None:
            raise OptionError("capped CG works in the Euclidean norm: no preconditioner.")
        if solver_parameters:
            raise OptionError(f"capped CG is not a PETSc KSP: it takes no solver_parameters "
                              f"({sorted(solver_parameters)}); give max_it to "
                              f"CappedCGSubproblem.")

    def solve(self, action, g, radius, rtol, max_it=None):
        max_it = self.max_it if max_it is None else min(self.max_it, max_it)
        kind, d, Hd, its = capped_cg(action, g, self.epsilon, self.zeta, max_it=max_it,
                                     radius=radius)
        norm_d = float(np.linalg.norm(d))
        if kind in ("SOL", "BOUNDARY"):
            scale = min(1.0, radius / norm_d)
        else:  # to the boundary, downhill
            scale = radius / norm_d * (-1.0 if g @ d > 0 else 1.0)
        p = scale * d
        predicted = -(g @ p + 0.5 * scale * scale * (d @ Hd))
        return Step(p, float(predicted), abs(scale) * norm_d, its, f"CAPPED_CG_{kind}")

    def certify(self, action, g, radius, iteration):
        oracle = minimum_eigenvalue_oracle(action, g.size, self.epsilon,
                                           seed=self.oracle_seed + iteration,
                                           delta=self.oracle_delta, max_it=self.oracle_max_it)
        if oracle.negative_curvature:
            found = f"curvature {oracle.curvature:.3e}"
        else:
            found = (f"no curvature below {-self.epsilon / 2:.3e}"
                     f"{'' if oracle.bound_met else ' (stopped by oracle_max_it)'}")
        message = (f"     minimum eigenvalue oracle: {oracle.iterations} Lanczos steps, "
                   f"smallest Ritz value {oracle.smallest_ritz_value:.3e}, {found}")
        escape = None
        if oracle.negative_curvature:  # to the boundary, downhill
            d = oracle.direction if g @ oracle.direction <= 0 else -oracle.direction
            p = radius * d
            predicted = -(g @ p + 0.5 * radius * radius * oracle.curvature)
            escape = Step(p, float(predicted), radius, 0, "ORACLE_NC")
        return Certificate(second_order=not oracle.negative_curvature and oracle.bound_met,
                           escape=escape, iterations=oracle.iterations, message=message)
