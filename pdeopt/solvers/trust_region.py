r"""Reduced-space trust-region Newton-CG: the default trainer.

At the iterate :math:`\theta_k` with gradient :math:`g_k` and Hessian action :math:`H_k`, the step
:math:`p_k` approximately solves the trust-region subproblem

.. math::

    \min_p\ m_k(p) = g_k^T p + \tfrac12 p^T H_k p \quad\text{subject to}\quad \|p\|_{P} \le \Delta_k,

by a PETSc KSP of type ``stcg`` (Steihaug–Toint), ``nash`` or ``gltr``, in the norm of the
preconditioner :math:`P` (Euclidean without one). CG stops at the boundary, on negative
curvature (following it to the boundary) or at the relative residual
:math:`\eta_k` of the Eisenstat–Walker forcing (choice 2),

.. math::

    \eta_k = \min\Big(\eta_{\max},\ \max\big(\gamma(\|g_k\|/\|g_{k-1}\|)^{\alpha},\
    \gamma\eta_{k-1}^{\alpha}\big)\Big), \qquad \gamma = 0.9,\ \alpha = 2,

the safeguard applying when :math:`\gamma\eta_{k-1}^\alpha > 0.1`. The step is accepted when
:math:`\rho_k = (\hat J(\theta_k) - \hat J(\theta_k + p_k)) / (-m_k(p_k)) > \eta_0`. A rejected
step shrinks the radius to :math:`\gamma_1\min(\Delta_k, \|p_k\|_P)`, an accepted one with
:math:`\rho_k < \eta_1` to :math:`\gamma_1\Delta_k`; the radius grows to
:math:`\min(\gamma_2\Delta_k, \Delta_{\max})` when :math:`\rho_k > \eta_2` and the step reached
the boundary (Nocedal & Wright, Alg. 4.1). A non-finite objective at a trial point is a
rejected step.
"""

import ctypes
import enum
import json
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType

import numpy as np
from petsc4py import PETSc

from pdeopt.errors import ConvergenceError, InputError, OptionError
from pdeopt.options import configure, inserted, reason_name
from pdeopt.parallel import print0
from pdeopt.problem.control_array import array_to_vec, create_control_vec, vec_to_array
from pdeopt.solvers.capped_cg import capped_cg
from pdeopt.solvers.checkpoint import OptimizerCheckpoint
from pdeopt.solvers.eigenvalue_oracle import minimum_eigenvalue_oracle
from pdeopt.solvers.reduced_hessian import ReducedHessian

__all__ = ["TrustRegionNewtonCG", "TrustRegionParameters", "TrustRegionResult",
           "TerminationReason"]

# KSPCGSetRadius and KSPCGGetNormD have no petsc4py binding: call PETSc's C API on the handle.
_libpetsc = ctypes.CDLL(PETSc.__file__)
_libpetsc.KSPCGSetRadius.argtypes = [ctypes.c_void_p, ctypes.c_double]
_libpetsc.KSPCGGetNormD.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_double)]


def _set_radius(ksp, radius):
    if _libpetsc.KSPCGSetRadius(ksp.handle, radius):
        raise ConvergenceError(f"KSPCGSetRadius({radius}) failed for KSP type {ksp.getType()}.")


def _step_norm(ksp):
    norm = ctypes.c_double()
    if _libpetsc.KSPCGGetNormD(ksp.handle, ctypes.byref(norm)):
        raise ConvergenceError(f"KSPCGGetNormD failed for KSP type {ksp.getType()}.")
    return norm.value


class TerminationReason(enum.Enum):
    """Why :class:`TrustRegionNewtonCG` stopped; ``converged`` and ``message`` describe it."""

    CONVERGED_GATOL = "the gradient norm fell below gatol"
    CONVERGED_GRTOL = "the gradient norm fell below grtol times its initial value"
    CONVERGED_SECOND_ORDER = ("the gradient norm fell below gatol or grtol and the minimum "
                              "eigenvalue oracle certified lambda_min(H) >= -capped_cg_epsilon")
    CONVERGED_FMIN = "the objective fell to fmin or below"
    DIVERGED_MAXITS = "the iteration limit max_it was reached"
    DIVERGED_MAXTIME = "the wall-time limit max_seconds was reached"
    DIVERGED_TR_REDUCTION = ("the trust region shrank below radius_min: the model does not "
                             "predict the objective (check the gradient with taylor_check)")
    DIVERGED_LINEAR_SOLVE = "the trust-region subproblem solve failed (PETSc's reason follows)"

    @property
    def converged(self) -> bool:
        return self.name.startswith("CONVERGED")

    @property
    def message(self) -> str:
        return self.value


@dataclass(frozen=True)
class TrustRegionParameters:
    r"""Settings of the outer trust-region loop (the inner KSP takes PETSc options).

    Attributes
    ----------
    max_it
        Outer iterations (accepted or rejected steps).
    gatol, grtol
        Stop when :math:`\|g\| \le` ``gatol`` or :math:`\|g\| \le` ``grtol`` :math:`\|g_0\|`.
    fmin
        Stop when :math:`\hat J(\theta) \le` ``fmin`` (TAO's ``-tao_fmin``): a target loss.
    max_seconds
        Stop after the first iteration that ends past this wall time since the solve began
        (a resumed solve counts the time before the interruption), with the state
        checkpointed, so that a batch job's time slot is not overrun.
    radius
        :math:`\Delta_0`; ``None`` takes the length of the preconditioned gradient,
        :math:`\|P^{-1}g_0\|_P`.
    radius_max, radius_min
        Bounds on :math:`\Delta`; below ``radius_min`` the solve stops.
    eta0, eta1, eta2
        Acceptance, shrink and growth thresholds on :math:`\rho`.
    shrink, grow
        :math:`\gamma_1` and :math:`\gamma_2`.
    subproblem
        ``"ksp"`` (default): the KSP of ``solver_parameters`` (``stcg``, ``nash``, ``gltr``);
        ``"capped_cg"``: capped CG on :math:`(H + 2\epsilon I)d = -g`
        (:func:`~pdeopt.solvers.capped_cg.capped_cg`, Royer, O'Neill & Wright 2020), its
        iterates cut at the trust region's boundary and its negative-curvature directions
        taken to it, the trust-region Newton-CG of Curtis, Robinson, Royer & Wright (2021):
        where the gradient tests are met, the minimum eigenvalue oracle
        (:func:`~pdeopt.solvers.eigenvalue_oracle.minimum_eigenvalue_oracle`) either certifies
        :math:`\lambda_{\min}(H) \ge -\epsilon` (``CONVERGED_SECOND_ORDER``) or gives a
        direction of curvature :math:`\le -\epsilon/2` that the step follows to the boundary,
        so the method leaves saddle points. Euclidean norm, no preconditioner, at most
        ``ksp_max_it`` iterations per subproblem.
    capped_cg_epsilon, capped_cg_zeta
        :math:`\epsilon` (the curvature tolerance :math:`\epsilon_H`) and :math:`\zeta` of
        capped CG.
    oracle_max_it, oracle_delta, oracle_seed
        The oracle's most Lanczos steps, its failure probability :math:`\delta` and the seed of
        its random starts (the iteration number is added). When ``oracle_max_it`` stops it
        before its bound :math:`j_{\max}`, the solve ends ``CONVERGED_GATOL`` (or ``GRTOL``):
        first-order only.
    hessian
        ``"exact"`` (default) or ``"gauss_newton"``: the SPD Gauss-Newton model, which far
        from a minimum spends the CG iterations on curvature that the exact Hessian's
        negative directions cut short.
    hessian_sample, hessian_sample_seed
        The fraction :math:`f \in (0, 1]` of the batch whose Hessian (or Gauss-Newton) model
        the subproblem uses, a uniform sample drawn afresh at every accepted iterate with the
        seed ``(hessian_sample_seed, iteration)``: the subsampled Hessian of Byrd, Chin,
        Neveitt & Nocedal (SIAM J. Optim. 2011). A Hessian action then costs :math:`f` of the
        whole batch's, and the objective, the gradient and the ratio test stay exact, so the
        trust region's convergence theory (any bounded model Hessian) holds. Needs a
        functional with ``subsample``
        (:class:`~pdeopt.problem.reduced_functional.ReducedFunctional`,
        :class:`~pdeopt.problem.ensemble.EnsembleReducedFunctional`).
    forcing
        ``"eisenstat_walker"`` (default) or ``"fixed"`` (the KSP's own ``ksp_rtol``).
    eta_max
        Largest forcing term.
    """

    max_it: int = 50
    gatol: float = 1e-8
    grtol: float = 0.0
    fmin: float = -np.inf
    max_seconds: float = np.inf
    radius: float | None = None
    radius_max: float = 1e10
    radius_min: float = 1e-12
    eta0: float = 1e-4
    eta1: float = 0.25
    eta2: float = 0.75
    shrink: float = 0.25
    grow: float = 2.0
    subproblem: str = "ksp"
    capped_cg_epsilon: float = 1e-6
    capped_cg_zeta: float = 0.5
    oracle_max_it: int = 100
    oracle_delta: float = 0.01
    oracle_seed: int = 0
    hessian: str = "exact"
    hessian_sample: float = 1.0
    hessian_sample_seed: int = 0
    forcing: str = "eisenstat_walker"
    eta_max: float = 0.5

    def __post_init__(self):
        if self.subproblem not in ("ksp", "capped_cg"):
            raise OptionError(f"subproblem must be 'ksp' or 'capped_cg', got {self.subproblem!r}.")
        if self.capped_cg_epsilon <= 0 or not 0 < self.capped_cg_zeta < 1:
            raise OptionError("need capped_cg_epsilon > 0 and 0 < capped_cg_zeta < 1.")
        if self.oracle_max_it < 1 or not 0 < self.oracle_delta < 1:
            raise OptionError("need oracle_max_it >= 1 and 0 < oracle_delta < 1.")
        if self.hessian not in ("exact", "gauss_newton"):
            raise OptionError(f"hessian must be 'exact' or 'gauss_newton', got {self.hessian!r}.")
        if not 0 < self.hessian_sample <= 1:
            raise OptionError(f"hessian_sample is a fraction of the batch in (0, 1], got "
                              f"{self.hessian_sample}.")
        if self.hessian_sample < 1 and self.subproblem == "capped_cg":
            raise OptionError("capped CG's second-order certificate is about the whole batch's "
                              "Hessian: use hessian_sample=1 with subproblem='capped_cg'.")
        if self.forcing not in ("eisenstat_walker", "fixed"):
            raise OptionError(f"forcing must be 'eisenstat_walker' or 'fixed', got {self.forcing!r}.")
        if not 0 <= self.eta0 < self.eta1 < self.eta2 < 1 or not 0 < self.shrink < 1 < self.grow:
            raise OptionError("need 0 <= eta0 < eta1 < eta2 < 1 and 0 < shrink < 1 < grow.")
        if self.max_it < 0 or (self.radius is not None and self.radius <= 0):
            raise OptionError("need max_it >= 0 and radius > 0.")
        if not self.max_seconds > 0 or np.isnan(self.fmin):
            raise OptionError("need max_seconds > 0 and fmin not NaN.")

    @classmethod
    def from_dict(cls, values):
        """The parameters from a dict, rejecting keys that are not parameters."""
        if isinstance(values, cls):
            return values
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values or {}) - known)
        if unknown:
            raise OptionError(f"unknown trust-region parameters {unknown}; known: {sorted(known)}.")
        return cls(**(values or {}))


@dataclass
class TrustRegionResult:
    """What a trust-region solve produced.

    Attributes
    ----------
    theta
        The last accepted iterate, whatever the reason for stopping.
    reason
        A :class:`TerminationReason`.
    iterations, objective, gradient_norm, radius
        At the end.
    counts
        ``forward``, ``adjoint`` (sweeps over the whole batch), ``hessian_actions``,
        ``ksp_iterations``, ``rejected``, and ``work``: forward+adjoint equivalents of every
        sweep (a forward or adjoint 1, a Hessian action 2), a subsample's at its fraction.
    history
        One dict per iteration (the monitor line's fields).
    """

    theta: np.ndarray
    reason: TerminationReason
    iterations: int
    objective: float
    gradient_norm: float
    radius: float
    counts: dict = field(default_factory=dict)
    history: list = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return self.reason.converged


class TrustRegionNewtonCG:
    r"""Minimise :math:`\hat J(\theta)` by trust-region Newton-CG with PETSc KSP subproblem solves.

    Parameters
    ----------
    Jhat
        A reduced functional with ``objective(theta)``, ``gradient(theta)``,
        ``hessian_action(theta, direction)``, ``size``, ``comm``, ``point`` and ``counts``
        (e.g. :class:`~pdeopt.problem.reduced_functional.ReducedFunctional`).
    parameters
        :class:`TrustRegionParameters` or a dict of them.
    preconditioner
        ``None`` or a PETSc Python PC context from :mod:`pdeopt.solvers.preconditioners`; it
        also defines the trust-region norm.
    solver_parameters
        PETSc options of the subproblem KSP without the prefix, e.g. ``{"ksp_type": "gltr"}``.
    options_prefix
        Prefix for command-line overrides (``-pdeopt_tr_ksp_type nash``).
    monitor
        Print one line per iteration on rank 0.
    checkpoint
        A directory: the optimiser state is written there atomically after every iteration
        (:class:`~pdeopt.solvers.checkpoint.OptimizerCheckpoint`), and ``solve(resume=True)``
        continues from it.
    """

    DEFAULT_SOLVER_PARAMETERS = MappingProxyType({
        "ksp_type": "stcg", "ksp_max_it": 50, "ksp_rtol": 0.5, "ksp_atol": 0.0})
    KSP_TYPES = ("stcg", "nash", "gltr")
    COUNTS = ("forward", "adjoint", "hessian_actions", "ksp_iterations", "rejected", "work")

    def __init__(self, Jhat, parameters=None, preconditioner=None, solver_parameters=None,
                 options_prefix="pdeopt_tr_", monitor=True, checkpoint=None, callback=None):
        self.Jhat, self.comm = Jhat, Jhat.comm
        self.callback = callback
        self.parameters = TrustRegionParameters.from_dict(parameters)
        self.monitor = monitor
        self.checkpoint = None if checkpoint is None else OptimizerCheckpoint(checkpoint,
                                                                              comm=self.comm)
        self._x = create_control_vec(Jhat.size, self.comm)
        self._g, self._p = self._x.duplicate(), self._x.duplicate()
        self.H = ReducedHessian.petsc_mat(Jhat, self._x,
                                          gauss_newton=self.parameters.hessian == "gauss_newton")
        ksp = PETSc.KSP().create(comm=self.comm)
        ksp.setOperators(self.H)
        pc = ksp.getPC()
        self.preconditioner = preconditioner
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
        if self.parameters.subproblem == "capped_cg" and preconditioner is not None:
            raise OptionError("capped CG works in the Euclidean norm: no preconditioner.")
        if self.parameters.hessian_sample < 1 and not hasattr(Jhat, "subsample"):
            raise OptionError(f"hessian_sample < 1 needs a functional with subsample(); "
                              f"{type(Jhat).__name__} has none: use hessian_sample=1.")

    # -- helpers ------------------------------------------------------------------------------
    def _array(self, vec):
        return vec_to_array(vec, self.Jhat.size, self.comm)

    def _evaluate(self, theta):
        """:math:`\\hat J(\\theta)`; ``inf`` where it is not finite or a solve inside it (an
        implicit layer's) diverged, so that a trial point there is a rejected step."""
        with np.errstate(all="ignore"):
            try:
                f = float(self.Jhat.objective(theta))
            except (FloatingPointError, ConvergenceError):
                f = np.inf
        return f if np.isfinite(f) else np.inf

    def _forcing(self, state, gnorm):
        p = self.parameters
        if p.forcing == "fixed":
            return self.ksp.getTolerances()[0]
        eta_prev, gnorm_prev = state["eta"], state["gnorm_prev"]
        if eta_prev is None:
            eta = p.eta_max
        else:
            eta = 0.9 * (gnorm / gnorm_prev) ** 2
            safeguard = 0.9 * eta_prev ** 2
            if safeguard > 0.1:
                eta = max(eta, safeguard)
            eta = min(eta, p.eta_max)
        return max(eta, 1e-12)

    def _initial_radius(self, g):
        """:math:`\\|P^{-1}g\\|_P = (g^T P^{-1} g)^{1/2}` (the Euclidean :math:`\\|g\\|` without a PC)."""
        array_to_vec(g, self._g)
        z = self._g.duplicate()
        self.ksp.getPC().apply(self._g, z)
        return float(np.sqrt(max(self._g.dot(z), 0.0))) or 1.0

    # -- the solve ------------------------------------------------------------------------------
    def solve(self, theta=None, resume=False) -> TrustRegionResult:
        """Minimise from ``theta`` (default: the reduced functional's point), or resume from
        the checkpoint directory."""
        p = self.parameters
        if resume:
            if self.checkpoint is None:
                raise InputError("resume=True needs checkpoint=<directory>.")
            state, arrays = self.checkpoint.load()
            theta = arrays["theta"]
            if self.Jhat.size != theta.size:
                raise InputError(f"the checkpoint holds {theta.size} controls, the problem "
                                 f"has {self.Jhat.size}.")
            if self.preconditioner is not None and hasattr(self.preconditioner, "restore"):
                self.preconditioner.restore(arrays)
        else:
            theta = (self.Jhat.point if theta is None else np.asarray(theta, dtype=float)).copy()
            if theta.shape != (self.Jhat.size,) or not np.all(np.isfinite(theta)):
                raise InputError(f"the starting point must be a finite vector of size "
                                 f"{self.Jhat.size}; it has shape {theta.shape} and "
                                 f"{np.count_nonzero(~np.isfinite(theta))} non-finite entries.")
            state = {"iteration": 0, "radius": p.radius, "eta": None, "gnorm_prev": None,
                     "gnorm0": None, "counts": dict.fromkeys(self.COUNTS, 0), "history": [],
                     "sample_iteration": 0}
        self._model, self._retired = self.Jhat, dict.fromkeys(("hessian_actions", "work"), 0)
        self._counts_base, self._counts_session = dict(state["counts"]), self._work()
        self._ksp_its = 0
        f = self._evaluate(theta)
        if not np.isfinite(f):
            raise InputError("the objective is not finite at the starting point: check the "
                             "data and the scale of the initial controls.")
        g = self.Jhat.gradient(theta)
        if not np.all(np.isfinite(g)):
            raise InputError("the gradient is not finite at the starting point.")
        gnorm = float(np.linalg.norm(g))
        self._draw_sample(theta, state["sample_iteration"])
        if not resume:
            state["gnorm0"] = gnorm
            self._update_preconditioner(theta, g)
        if state["radius"] is None:
            state["radius"] = self._initial_radius(g)
        history = state["history"]
        self._t0 = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
        if not history:
            self._record(state, f, gnorm, None, None, 0, "")
        reason, ksp_reason = None, None
        while reason is None:
            it = state["iteration"]
            if gnorm <= p.gatol:
                reason = TerminationReason.CONVERGED_GATOL
            elif gnorm <= p.grtol * state["gnorm0"]:
                reason = TerminationReason.CONVERGED_GRTOL
            elif f <= p.fmin:
                reason = TerminationReason.CONVERGED_FMIN
            elif it >= p.max_it:
                reason = TerminationReason.DIVERGED_MAXITS
            elif np.isfinite(p.max_seconds) and self.comm.bcast(
                    history[-1]["seconds"] >= p.max_seconds, root=0):  # rank 0's clock decides
                reason = TerminationReason.DIVERGED_MAXTIME
            elif state["radius"] < p.radius_min:
                reason = TerminationReason.DIVERGED_TR_REDUCTION
            if reason is not None and reason.converged and p.subproblem == "capped_cg":
                self.H.getPythonContext().set_point(theta)
                oracle = self._oracle(theta, it)
                if oracle.negative_curvature:
                    reason = None
                elif oracle.bound_met:
                    reason = TerminationReason.CONVERGED_SECOND_ORDER
            if reason is not None:
                break
            # -- the subproblem: H p = -g inside the trust region
            eta = self._forcing(state, gnorm)
            self.H.getPythonContext().set_point(theta, self._model)
            if p.subproblem == "capped_cg" and gnorm <= max(p.gatol, p.grtol * state["gnorm0"]):
                step, predicted, step_norm, ksp_its, ksp_reason = self._oracle_step(
                    g, oracle, state["radius"])
            elif p.subproblem == "capped_cg":
                step, predicted, step_norm, ksp_its, ksp_reason = self._capped_cg_step(
                    theta, g, state["radius"])
            else:
                _, atol, dtol, max_it = self.ksp.getTolerances()
                self.ksp.setTolerances(rtol=eta, atol=atol, divtol=dtol, max_it=max_it)
                _set_radius(self.ksp, state["radius"])
                array_to_vec(-g, self._g)
                self._p.zeroEntries()
                with inserted(self.ksp):
                    self.ksp.solve(self._g, self._p)
                ksp_its = self.ksp.getIterationNumber()
                code = self.ksp.getConvergedReason()
                ksp_reason = reason_name(PETSc.KSP.ConvergedReason, code)
                if code < 0 and code != PETSc.KSP.ConvergedReason.DIVERGED_MAX_IT:
                    reason = TerminationReason.DIVERGED_LINEAR_SOLVE
                    break
                step = self._array(self._p)
                step_norm = _step_norm(self.ksp)
                predicted = -self.ksp.getCGObjectiveValue()
            self._ksp_its += ksp_its
            # -- the ratio test
            trial = theta + step
            f_trial = self._evaluate(trial) if predicted > 0 else np.inf
            # Both reductions shifted by the round-off in f (Conn, Gould & Toint 2000, 17.4.2),
            # so that steps predicted to gain less than round-off are judged by ~1.
            delta = 10 * np.finfo(float).eps * max(1.0, abs(f))
            rho = (f - f_trial + delta) / (predicted + delta) \
                if predicted > 0 and np.isfinite(f_trial) else -np.inf
            accepted = rho > p.eta0
            if not accepted:  # below the failed step, so that the next one differs
                state["radius"] = p.shrink * min(step_norm or state["radius"], state["radius"])
            elif rho < p.eta1:
                state["radius"] = p.shrink * state["radius"]
            elif rho > p.eta2 and step_norm >= 0.99 * state["radius"]:
                state["radius"] = min(p.grow * state["radius"], p.radius_max)
            if accepted:
                g_trial = self.Jhat.gradient(trial)
                if not np.all(np.isfinite(g_trial)):
                    accepted = False
                    state["radius"] = p.shrink * min(step_norm, state["radius"])
            if accepted:
                theta, f, g = trial, f_trial, g_trial
                state["gnorm_prev"], state["eta"] = gnorm, eta
                gnorm = float(np.linalg.norm(g))
                state["sample_iteration"] = it + 1
                self._draw_sample(theta, it + 1)
                self._update_preconditioner(theta, g)
                if self.callback is not None:
                    self.callback(it + 1, theta, f, gnorm)
            else:
                self._counts_base["rejected"] += 1
            state["iteration"] = it + 1
            self._record(state, f, gnorm, rho, step_norm, ksp_its, ksp_reason, accepted)
            if self.checkpoint is not None:
                arrays = {"theta": theta}
                if self.preconditioner is not None and hasattr(self.preconditioner, "state"):
                    arrays.update(self.preconditioner.state())
                self.checkpoint.save(state, arrays)
        result = TrustRegionResult(theta=theta, reason=reason, iterations=state["iteration"],
                                   objective=f, gradient_norm=gnorm, radius=state["radius"],
                                   counts=self._counts(), history=history)
        if self.monitor:
            print0(f"TrustRegionNewtonCG: {reason.name} ({reason.message}) after "
                   f"{result.iterations} iterations", comm=self.comm)
        if reason is TerminationReason.DIVERGED_LINEAR_SOLVE:
            error = ConvergenceError(
                f"the trust-region subproblem KSP {self.ksp.getType()} stopped with "
                f"{ksp_reason} at iteration {state['iteration']}; check the Hessian action "
                f"(dot_test, taylor_check) and the preconditioner, which must be SPD. The last "
                f"accepted iterate is in the exception's .result.")
            error.result = result
            raise error
        return result

    def _oracle(self, theta, it):
        p = self.parameters
        H = self.H.getPythonContext()
        oracle = minimum_eigenvalue_oracle(lambda v: H.action(theta, v), theta.size,
                                           p.capped_cg_epsilon, seed=p.oracle_seed + it,
                                           delta=p.oracle_delta, max_it=p.oracle_max_it)
        self._ksp_its += oracle.iterations
        if self.monitor:
            found = (f"curvature {oracle.curvature:.3e}" if oracle.negative_curvature else
                     f"no curvature below {-p.capped_cg_epsilon / 2:.3e}"
                     f"{'' if oracle.bound_met else ' (stopped by oracle_max_it)'}")
            print0(f"     minimum eigenvalue oracle: {oracle.iterations} Lanczos steps, "
                   f"smallest Ritz value {oracle.smallest_ritz_value:.3e}, {found}",
                   comm=self.comm)
        return oracle

    @staticmethod
    def _oracle_step(g, oracle, radius):
        """The oracle's direction to the boundary, downhill, and its predicted reduction."""
        d = oracle.direction if g @ oracle.direction <= 0 else -oracle.direction
        step = radius * d
        predicted = -(g @ step + 0.5 * radius * radius * oracle.curvature)
        return step, float(predicted), radius, 0, "ORACLE_NC"

    def _capped_cg_step(self, theta, g, radius):
        """The capped-CG step inside the radius, its predicted reduction and its report."""
        p = self.parameters
        H = self.H.getPythonContext()
        kind, d, Hd, its = capped_cg(lambda v: H.action(theta, v), g, p.capped_cg_epsilon,
                                     p.capped_cg_zeta, max_it=self.ksp.getTolerances()[3],
                                     radius=radius)
        norm_d = float(np.linalg.norm(d))
        if kind in ("SOL", "BOUNDARY"):
            scale = min(1.0, radius / norm_d)
        else:  # to the boundary, downhill
            scale = radius / norm_d * (-1.0 if g @ d > 0 else 1.0)
        step = scale * d
        predicted = -(g @ step + 0.5 * scale * scale * (d @ Hd))
        return step, float(predicted), abs(scale) * norm_d, its, f"CAPPED_CG_{kind}"

    def _update_preconditioner(self, theta, g):
        if self.preconditioner is not None and hasattr(self.preconditioner, "update"):
            self.preconditioner.update(theta, g, self.Jhat)

    def _draw_sample(self, theta, iteration):
        r"""The functional whose Hessian models :math:`\hat J`'s from ``theta`` on: a new
        subsample of the batch (``hessian_sample < 1``) or :math:`\hat J` itself."""
        p = self.parameters
        if p.hessian_sample < 1:
            if self._model is not self.Jhat:
                for k, v in self._sample_work(self._model).items():
                    self._retired[k] += v
            self._model = self.Jhat.subsample(p.hessian_sample,
                                              (p.hessian_sample_seed, iteration), theta=theta)

    @staticmethod
    def _sample_work(J):
        """A subsample's Hessian actions and its sweeps' work at its fraction."""
        c = J.counts
        actions = c["soa"] + c.get("gauss_newton", 0)
        return {"hessian_actions": actions,
                "work": J.fraction * (c["forward"] + c["adjoint"] + 2 * actions)}

    def _work(self):
        """Sweeps done so far by the reduced functional and the Hessian's subsamples."""
        c = self.Jhat.counts
        actions = c["soa"] + c.get("gauss_newton", 0)
        work = {"forward": c["forward"], "adjoint": c["adjoint"], "hessian_actions": actions,
                "work": c["forward"] + c["adjoint"] + 2 * actions}
        if self._model is not self.Jhat:
            model = self._sample_work(self._model)
            for k in self._retired:
                work[k] += self._retired[k] + model[k]
        return work

    def _counts(self):
        """Counts since the first iteration, across resumes."""
        now = self._work()
        counts = dict(self._counts_base)
        for k in now:
            counts[k] += now[k] - self._counts_session[k]
        counts["ksp_iterations"] += self._ksp_its
        return counts

    def _record(self, state, f, gnorm, rho, step_norm, ksp_its, ksp_reason, accepted=True):
        history = state["history"]
        entry = {"iteration": state["iteration"], "objective": f, "gradient_norm": gnorm,
                 "radius": state["radius"],
                 "rho": None if rho is None or not np.isfinite(rho) else float(rho), "step_norm": step_norm,
                 "ksp_iterations": int(ksp_its), "ksp_reason": ksp_reason,
                 "accepted": bool(accepted), "seconds": time.perf_counter() - self._t0}
        state["counts"] = self._counts()
        entry["counts"] = dict(state["counts"])
        history.append(entry)
        if self.monitor:
            rho_s = "" if rho is None else f" rho {rho: .3e}"
            name = "ccg" if self.parameters.subproblem == "capped_cg" else self.ksp.getType()
            print0(f"{entry['iteration']:4d} TR {name:4s} J {f:.10e} "
                   f"||g|| {gnorm:.4e} radius {state['radius']:.3e}{rho_s} "
                   f"ksp {ksp_its:3d} {ksp_reason}{'' if accepted else ' rejected'}",
                   comm=self.comm)

    def write_history(self, result: TrustRegionResult, path):
        """Write ``result``'s history, counts and reason as JSON (rank 0, atomically)."""
        if self.comm.rank == 0:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(json.dumps({"reason": result.reason.name,
                                       "message": result.reason.message,
                                       "counts": result.counts, "history": result.history},
                                      indent=1))
            tmp.replace(path)
        self.comm.Barrier()
