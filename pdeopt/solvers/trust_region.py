r"""Reduced-space trust-region Newton-CG: the default trainer.

At the iterate :math:`\theta_k` with gradient :math:`g_k` and Hessian action :math:`H_k`, the step
:math:`p_k` approximately solves the trust-region subproblem

.. math::

    \min_p\ m_k(p) = g_k^T p + \tfrac12 p^T H_k p
    \quad\text{subject to}\quad \|p\|_{P} \le \Delta_k,

with :math:`H_k` a :mod:`~pdeopt.solvers.hessian_model` (exact, Gauss–Newton, subsampled) and
the solve a :mod:`~pdeopt.solvers.subproblem` strategy: by default a PETSc KSP of type
``stcg`` (Steihaug–Toint), ``nash`` or ``gltr``, in the norm of the preconditioner :math:`P`
(Euclidean without one), which stops at the boundary, on negative curvature (following it to
the boundary) or at the relative residual :math:`\eta_k` of the Eisenstat–Walker forcing
(choice 2),

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

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from pdeopt.checks import instance
from pdeopt.control_vec import create_control_vec
from pdeopt.errors import (CheckpointError, ControlDomainError, ConvergenceError, InputError,
                           OptionError)
from pdeopt.problem.array_functional import ArrayFunctional
from pdeopt.problem.counts import Counts
from pdeopt.solvers.checkpoint import OptimizerCheckpoint
from pdeopt.solvers.hessian_model import ExactHessian, HessianModel
from pdeopt.solvers.monitor import Monitor
from pdeopt.solvers.preconditioners.base import TrustRegionPC
from pdeopt.solvers.reasons import TerminationReason
from pdeopt.solvers.reduced_hessian import ReducedHessian
from pdeopt.solvers.result import OptimizationResult
from pdeopt.solvers.subproblem import KSPSubproblem, Step, Subproblem

__all__ = ["TrustRegionNewtonCG", "TrustRegionParameters", "TrustRegionState"]


@dataclass(frozen=True)
class TrustRegionParameters:
    r"""Settings of the outer trust-region loop.

    The subproblem solver, the model Hessian and the preconditioner are objects given to
    :class:`TrustRegionNewtonCG`; the subproblem's KSP takes PETSc options.

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
    max_work
        Stop after the first iteration at which the work spent (forward + adjoint equivalents
        of the whole batch, :attr:`OptimizationResult.counts` ``.work``; a resumed solve counts
        the work before the interruption) reaches this budget: runs compared at equal cost.
    radius
        :math:`\Delta_0`; ``None`` takes the subproblem's default, for the KSP the length of
        the preconditioned gradient :math:`\|P^{-1}g_0\|_P`.
    radius_max, radius_min
        Bounds on :math:`\Delta`; below ``radius_min`` the solve stops.
    eta0, eta1, eta2
        Acceptance, shrink and growth thresholds on :math:`\rho`.
    shrink, grow
        :math:`\gamma_1` and :math:`\gamma_2`.
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
    max_work: float = np.inf
    radius: float | None = None
    radius_max: float = 1e10
    radius_min: float = 1e-12
    eta0: float = 1e-4
    eta1: float = 0.25
    eta2: float = 0.75
    shrink: float = 0.25
    grow: float = 2.0
    forcing: str = "eisenstat_walker"
    eta_max: float = 0.5

    def __post_init__(self):
        def bad(name, need):
            return OptionError(f"TrustRegionParameters: {name}={getattr(self, name)!r}; need "
                               f"{need}.")

        def real(name, allow_inf=False, allow_none=False):
            value = getattr(self, name)
            if value is None and allow_none:
                return
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating,
                                                                 np.integer)):
                raise bad(name, "a real number")
            if np.isnan(value) or (np.isinf(value) and not allow_inf):
                raise bad(name, "a finite number" + (" or inf" if allow_inf else ""))

        if isinstance(self.max_it, bool) or not isinstance(self.max_it, (int, np.integer)) \
                or self.max_it < 0:
            raise bad("max_it", "an integer >= 0")
        for name in ("gatol", "grtol", "radius_max", "radius_min", "eta0", "eta1", "eta2",
                     "shrink", "grow", "eta_max"):
            real(name)
        real("fmin", allow_inf=True)
        real("max_seconds", allow_inf=True)
        real("max_work", allow_inf=True)
        real("radius", allow_none=True)
        if self.gatol < 0 or self.grtol < 0:
            raise bad("gatol" if self.gatol < 0 else "grtol", "a tolerance >= 0")
        if not self.max_seconds > 0:
            raise bad("max_seconds", "> 0 (inf for no limit)")
        if not self.max_work > 0:
            raise bad("max_work", "> 0 (inf for no limit)")
        if self.fmin == np.inf:
            raise bad("fmin", "< inf (-inf for no target)")
        if not 0 < self.radius_min < self.radius_max:
            raise bad("radius_min", f"0 < radius_min < radius_max = {self.radius_max!r}")
        if self.radius is not None and not self.radius_min <= self.radius <= self.radius_max:
            raise bad("radius", f"radius_min <= radius <= radius_max, "
                                f"[{self.radius_min!r}, {self.radius_max!r}], or None")
        if not 0 <= self.eta0 < self.eta1 < self.eta2 < 1:
            raise bad("eta0", "0 <= eta0 < eta1 < eta2 < 1 "
                              f"(eta1={self.eta1!r}, eta2={self.eta2!r})")
        if not 0 < self.shrink < 1 < self.grow:
            raise bad("shrink", f"0 < shrink < 1 < grow (grow={self.grow!r})")
        if self.forcing not in ("eisenstat_walker", "fixed"):
            raise bad("forcing", "'eisenstat_walker' or 'fixed'")
        if not 0 < self.eta_max < 1:
            raise bad("eta_max", "0 < eta_max < 1")

    @classmethod
    def from_dict(cls, values) -> "TrustRegionParameters":
        """The parameters from a dict, rejecting keys that are not parameters."""
        if isinstance(values, cls):
            return values
        if values is not None and not isinstance(values, dict):
            raise OptionError(f"parameters={values!r} must be a dict of TrustRegionParameters "
                              f"or a TrustRegionParameters.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values or {}) - known)
        if unknown:
            raise OptionError(f"unknown trust-region parameters {unknown}; known: "
                              f"{sorted(known)}. The subproblem and the Hessian model are "
                              f"objects: subproblem=CappedCGSubproblem(...), "
                              f"hessian=GaussNewtonHessian() or SubsampledHessian(...).")
        return cls(**(values or {}))


@dataclass
class TrustRegionState:
    """The state of the loop between iterations: what a checkpoint stores besides the arrays.

    Attributes
    ----------
    iteration
        Iterations done.
    radius
        :math:`\\Delta_k`.
    eta, gnorm_prev
        The last accepted step's forcing term and the gradient norm before it
        (Eisenstat–Walker).
    gnorm0
        :math:`\\|g_0\\|`, for ``grtol``.
    accepted_at
        The iteration at which the current iterate was accepted (the subsampled Hessian's
        draw).
    counts
        The solve's :class:`~pdeopt.problem.counts.Counts` so far.
    history
        The monitor's entries.
    """

    iteration: int = 0
    radius: float | None = None
    eta: float | None = None
    gnorm_prev: float | None = None
    gnorm0: float | None = None
    accepted_at: int = 0
    counts: Counts = field(default_factory=Counts)
    history: list = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-serialisable."""
        return dict(asdict(self), counts=self.counts.as_dict())

    @classmethod
    def from_dict(cls, values: dict) -> "TrustRegionState":
        """The state of :meth:`as_dict`'s output."""
        return cls(**dict(values, counts=Counts.from_dict(values["counts"])))


class TrustRegionNewtonCG:
    r"""Minimise :math:`\hat J(\theta)` by trust-region Newton-CG.

    Parameters
    ----------
    Jhat
        The :class:`~pdeopt.problem.array_functional.ArrayFunctional` to minimise (e.g.
        :class:`~pdeopt.problem.reduced_functional.ReducedFunctional`).
    parameters
        :class:`TrustRegionParameters` or a dict of them.
    hessian
        The model Hessian, a :class:`~pdeopt.solvers.hessian_model.HessianModel`: exact
        (default), :class:`~pdeopt.solvers.hessian_model.GaussNewtonHessian` or
        :class:`~pdeopt.solvers.hessian_model.SubsampledHessian`.
    subproblem
        The :class:`~pdeopt.solvers.subproblem.Subproblem` solver:
        :class:`~pdeopt.solvers.subproblem.KSPSubproblem` (default) or
        :class:`~pdeopt.solvers.subproblem.CappedCGSubproblem`.
    preconditioner
        ``None`` or a :class:`~pdeopt.solvers.preconditioners.base.TrustRegionPC`; it also
        defines the trust-region norm.
    solver_parameters
        PETSc options of the subproblem's KSP without the prefix, e.g.
        ``{"ksp_type": "gltr"}``, and ``"monitor"`` to print a line per iteration on rank 0.
    options_prefix
        Prefix for command-line overrides (``-pdeopt_tr_ksp_type nash``,
        ``-pdeopt_tr_monitor``, ``-pdeopt_tr_pc_lmvm_mat_lmvm_hist_size 5``).
    checkpoint
        A directory: the state is written there atomically after every iteration
        (:class:`~pdeopt.solvers.checkpoint.OptimizerCheckpoint`), and ``solve(resume=True)``
        continues from it.
    callback
        ``callback(iteration, theta, objective, gradient_norm)`` at every accepted iterate.
    monitor_columns
        ``{name: f}`` with ``f(theta) -> float`` collective: extra columns of the monitor line
        and of the history (entry ``"columns"``), evaluated at every accepted iterate, e.g.
        ``{"margin": pdeopt.stability_column(model.network, x[:, :16])}``, the smallest
        stability margin of the layers.
    """

    def __init__(self, Jhat: ArrayFunctional, *, parameters=None,
                 hessian: HessianModel | None = None, subproblem: Subproblem | None = None,
                 preconditioner: TrustRegionPC | None = None,
                 solver_parameters: dict | None = None, options_prefix: str = "pdeopt_tr_",
                 checkpoint=None, callback=None, monitor_columns=None):
        if not isinstance(Jhat, ArrayFunctional):
            raise InputError(f"TrustRegionNewtonCG minimises an ArrayFunctional (e.g. "
                             f"pdeopt.ReducedFunctional), not a {type(Jhat).__name__}.")
        name = "TrustRegionNewtonCG"
        hessian = instance(name, "hessian", ExactHessian() if hessian is None else hessian,
                           HessianModel, "e.g. pdeopt.GaussNewtonHessian()")
        subproblem = instance(name, "subproblem",
                              KSPSubproblem() if subproblem is None else subproblem, Subproblem,
                              "e.g. pdeopt.CappedCGSubproblem()")
        if preconditioner is not None:
            instance(name, "preconditioner", preconditioner, TrustRegionPC,
                     "e.g. pdeopt.LMVMPC(), or None")
        instance(name, "solver_parameters", solver_parameters or {}, dict,
                 "PETSc options as a dict")
        instance(name, "options_prefix", options_prefix, str, "e.g. 'pdeopt_tr_'")
        if callback is not None and not callable(callback):
            raise OptionError(f"{name}: callback={callback!r} must be callable, "
                              f"callback(iteration, theta, objective, gradient_norm).")
        columns = dict(instance(name, "monitor_columns", monitor_columns or {}, Mapping,
                                "{name: f} with f(theta) -> float"))
        for key, f in columns.items():
            if not isinstance(key, str) or not callable(f):
                raise OptionError(f"{name}: monitor_columns[{key!r}] must map a name to a "
                                  f"callable f(theta) -> float, e.g. "
                                  f"{{'margin': pdeopt.stability_column(network, x)}}.")
        self.columns, self._column_values = columns, {}
        self.Jhat, self.comm, self.callback = Jhat, Jhat.comm, callback
        self.parameters = TrustRegionParameters.from_dict(parameters)
        self.hessian = hessian.bind(Jhat)
        self.subproblem = subproblem
        self.preconditioner = preconditioner
        if not self.hessian.whole_batch and not isinstance(self.subproblem, KSPSubproblem):
            raise OptionError("capped CG's second-order certificate is about the whole batch's "
                              "Hessian: use ExactHessian or GaussNewtonHessian with "
                              "CappedCGSubproblem.")
        self.monitor, solver_parameters = Monitor.from_options(self.comm, solver_parameters,
                                                               options_prefix)
        self.checkpoint, self._fingerprint = None, None
        if checkpoint is not None:
            self.checkpoint = OptimizerCheckpoint(checkpoint, comm=self.comm)
            self.checkpoint.check_writable()
        self.H = ReducedHessian.petsc_mat(self.hessian.action,
                                          create_control_vec(Jhat.size, self.comm))
        self.subproblem.setup(self.H, preconditioner, solver_parameters, options_prefix)

    def solve(self, theta=None, resume: bool = False) -> OptimizationResult:
        """Minimise from ``theta`` (default: the functional's point), or resume from the
        checkpoint directory."""
        p = self.parameters
        state, theta = self._start(theta, resume)
        f, g = self._objective(theta), self.Jhat.gradient(theta)
        if not np.isfinite(f) or not np.all(np.isfinite(g)):
            raise InputError("the objective or its gradient is not finite at the starting "
                             "point: check the data and the scale of the initial controls.")
        gnorm = float(np.linalg.norm(g))
        self.hessian.accept(theta, state.accepted_at)
        if not resume:
            state.gnorm0 = gnorm
            self._accept_preconditioner(theta, g)
        if state.radius is None:
            state.radius = self.subproblem.initial_radius(g)
        self.monitor = Monitor(self.comm, self.monitor.enabled, state.history)
        if not state.history:
            self._record(state, f, gnorm, theta)
        while True:
            reason, step = self._stop_test(state, f, gnorm), None
            if reason in (TerminationReason.CONVERGED_GATOL, TerminationReason.CONVERGED_GRTOL):
                reason, step = self._certify(state, theta, g, reason)
            if reason is not None:
                break
            # the subproblem: min g.p + p.Hp/2 within the radius
            self.H.getPythonContext().set_point(theta)
            eta = self._forcing(state, gnorm)
            if step is None:
                step = self.subproblem.solve(lambda v: self.hessian.action(theta, v), g,
                                             state.radius, eta, self.hessian.krylov_limit)
            self._extra += Counts(ksp_iterations=step.iterations)
            if step.failed:
                reason = TerminationReason.DIVERGED_LINEAR_SOLVE
                break
            # the ratio test
            trial = theta + step.p
            f_trial = self._objective(trial) if step.predicted > 0 else np.inf
            rho = self._ratio(f, f_trial, step.predicted)
            state.radius = self._new_radius(state.radius, rho, step)
            accepted = rho > p.eta0
            if accepted:
                g_trial = self.Jhat.gradient(trial)
                accepted = bool(np.all(np.isfinite(g_trial)))
                if not accepted:
                    state.radius = p.shrink * min(step.norm, state.radius)
            if accepted:
                theta, f, g, gnorm = self._accept(state, trial, f_trial, g_trial, gnorm, eta)
            else:
                self._extra += Counts(rejected=1)
            state.iteration += 1
            self._record(state, f, gnorm, theta, rho, step, accepted)
            self._save(state, theta)
        return self._finish(state, reason, theta, f, gnorm, step)

    #: Parameters that stop the loop but do not change its path: a resumed run may change them.
    STOPPING = ("max_it", "gatol", "grtol", "fmin", "max_seconds", "max_work")

    def fingerprint(self) -> dict:
        """What the checkpoint records of this run: the functional, the Hessian model, the
        subproblem solver, the preconditioner and the parameters that change the path (not
        the stopping tests). Collective the first time, then stored."""
        if self._fingerprint is None:
            self._fingerprint = self._collect_fingerprint()
        return self._fingerprint

    def _collect_fingerprint(self) -> dict:
        parameters = {k: v for k, v in asdict(self.parameters).items()
                      if k not in self.STOPPING}
        pc = None if self.preconditioner is None else self.preconditioner.fingerprint()
        fingerprint = {"functional": self.Jhat.fingerprint(),
                       "hessian": self.hessian.fingerprint(),
                       "subproblem": self.subproblem.fingerprint(),
                       "preconditioner": pc, "parameters": parameters}
        return json.loads(json.dumps(fingerprint, default=str))  # as the checkpoint reads it

    # -- the pieces of the loop ---------------------------------------------------------------
    def _start(self, theta, resume):
        """The state and the iterate to start from; the counts' baseline."""
        if resume:
            if self.checkpoint is None:
                raise InputError("resume=True needs checkpoint=<directory>.")
            values, arrays = self.checkpoint.load(self.fingerprint())
            try:  # the fingerprints agree: a failure here is a damaged state
                theta = self.Jhat.check_point(arrays["theta"], "the checkpoint's controls")
                state = TrustRegionState.from_dict(values)
                if self.preconditioner is not None:
                    self.preconditioner.restore(arrays)
            except (KeyError, TypeError, ValueError) as e:
                raise CheckpointError(f"the checkpoint in {self.checkpoint.directory} is not a "
                                      f"trust-region state of this problem ({e!r}); start "
                                      f"without resume=True.") from None
        else:
            theta = self.Jhat.check_point(self.Jhat.point if theta is None else theta).copy()
            state = TrustRegionState(radius=self.parameters.radius)
        self.hessian.bind(self.Jhat)
        self._base, self._sweeps0, self._extra = state.counts, self._sweeps(), Counts()
        return state, theta

    def _stop_test(self, state, f, gnorm):
        """The first test that stops the solve, or ``None``."""
        p = self.parameters
        if gnorm <= p.gatol:
            return TerminationReason.CONVERGED_GATOL
        if gnorm <= p.grtol * state.gnorm0:
            return TerminationReason.CONVERGED_GRTOL
        if f <= p.fmin:
            return TerminationReason.CONVERGED_FMIN
        if state.iteration >= p.max_it:
            return TerminationReason.DIVERGED_MAXITS
        if np.isfinite(p.max_seconds) and self.comm.bcast(  # rank 0's clock decides
                state.history[-1]["seconds"] >= p.max_seconds, root=0):
            return TerminationReason.DIVERGED_MAXTIME
        if state.counts.work >= p.max_work:
            return TerminationReason.DIVERGED_MAXWORK
        if state.radius < p.radius_min:
            return TerminationReason.DIVERGED_TR_REDUCTION
        return None

    def _certify(self, state, theta, g, reason):
        """At a first-order point: stop (first or second order), or a step out of it."""
        self.H.getPythonContext().set_point(theta)
        cert = self.subproblem.certify(lambda v: self.hessian.action(theta, v), g,
                                       state.radius, state.iteration)
        self._extra += Counts(ksp_iterations=cert.iterations)
        self.monitor.note(cert.message)
        if cert.escape is not None:
            return None, cert.escape
        return (TerminationReason.CONVERGED_SECOND_ORDER if cert.second_order else reason), None

    def _forcing(self, state, gnorm):
        r"""The relative tolerance :math:`\eta_k` of the subproblem (module docstring)."""
        p = self.parameters
        if p.forcing == "fixed":
            return self.subproblem.rtol
        if state.eta is None:
            return p.eta_max
        eta = 0.9 * (gnorm / state.gnorm_prev) ** 2
        safeguard = 0.9 * state.eta ** 2
        if safeguard > 0.1:
            eta = max(eta, safeguard)
        return max(min(eta, p.eta_max), 1e-12)

    def _objective(self, theta):
        r""":math:`\hat J(\theta)`; ``inf`` where it is not finite, a solve inside it (an
        implicit layer's) diverged or the controls leave the model's domain (a learned delay
        out of range), so that a trial point there is a rejected step."""
        if not np.all(np.isfinite(theta)):  # a step that overflowed
            return np.inf
        with np.errstate(all="ignore"):
            try:
                f = float(self.Jhat.objective(theta))
            except (ConvergenceError, ControlDomainError):
                f = np.inf
        return f if np.isfinite(f) else np.inf

    @staticmethod
    def _ratio(f, f_trial, predicted):
        r""":math:`\rho`, both reductions shifted by the round-off :math:`\delta` in :math:`f`
        (Conn, Gould & Toint 2000, 17.4.2), so that steps predicted to gain less than round-off
        are judged by about 1; exactly 1 when the step is predicted to gain less than
        :math:`\delta` and :math:`f` changed by less than :math:`10\delta` (the objective
        cannot rank the two points: the model does); :math:`-\infty` for a non-finite
        trial."""
        if not (predicted > 0 and np.isfinite(f_trial)):
            return -np.inf
        delta = 10 * np.finfo(float).eps * max(1.0, abs(f))
        if predicted <= delta and abs(f - f_trial) <= 10 * delta:
            return 1.0
        return (f - f_trial + delta) / (predicted + delta)

    def _new_radius(self, radius, rho, step: Step):
        p = self.parameters
        if rho <= p.eta0:  # below the failed step, so that the next one differs
            return p.shrink * min(step.norm or radius, radius)
        if rho < p.eta1:
            return p.shrink * radius
        if rho > p.eta2 and step.norm >= 0.99 * radius:
            return min(p.grow * radius, p.radius_max)
        return radius

    def _accept(self, state, theta, f, g, gnorm_prev, eta):
        """Move to the accepted trial point; the hooks that follow an accepted iterate."""
        state.gnorm_prev, state.eta = gnorm_prev, eta
        gnorm = float(np.linalg.norm(g))
        state.accepted_at = state.iteration + 1
        self.hessian.accept(theta, state.accepted_at)
        self._accept_preconditioner(theta, g)
        if self.callback is not None:
            self.callback(state.iteration + 1, theta, f, gnorm)
        return theta, f, g, gnorm

    def _accept_preconditioner(self, theta, g):
        if self.preconditioner is not None:
            self.preconditioner.accept(theta, g, self.Jhat)

    def _sweeps(self) -> Counts:
        """Sweeps done so far by the functional and the Hessian model."""
        return self.Jhat.counts + self.hessian.counts

    def _counts(self) -> Counts:
        """The solve's counts, across resumes."""
        return self._base + (self._sweeps() - self._sweeps0) + self._extra

    def _record(self, state, f, gnorm, theta, rho=None, step=None, accepted=True):
        state.counts = self._counts()
        if self.columns and (accepted or not self._column_values):
            self._column_values = {k: float(fn(theta)) for k, fn in self.columns.items()}
        extra = "".join(f" {k} {v: .3e}" for k, v in self._column_values.items())
        finite_rho = rho is not None and np.isfinite(rho)
        rho_s = f" rho {rho: .3e}" if rho is not None else ""
        its = step.iterations if step else 0
        reason = step.reason if step else ""
        line = (f"{state.iteration:4d} TR {self.subproblem.name:4s} J {f:.10e} "
                f"||g|| {gnorm:.4e} radius {state.radius:.3e}{rho_s} "
                f"ksp {its:3d} {reason}{'' if accepted else ' rejected'}{extra}")
        self.monitor.record(line, iteration=state.iteration, objective=f, gradient_norm=gnorm,
                            radius=state.radius, rho=float(rho) if finite_rho else None,
                            step_norm=step.norm if step else None, ksp_iterations=int(its),
                            ksp_reason=reason, accepted=bool(accepted),
                            counts=state.counts.as_dict(),
                            **({"columns": dict(self._column_values)} if self.columns else {}))

    def _save(self, state, theta):
        if self.checkpoint is not None:
            arrays = {"theta": theta}
            if self.preconditioner is not None:
                arrays.update(self.preconditioner.state())
            self.checkpoint.save(state.as_dict(), arrays, self.fingerprint())

    def _finish(self, state, reason, theta, f, gnorm, step):
        result = OptimizationResult(theta=theta, reason=reason, iterations=state.iteration,
                                    objective=f, gradient_norm=gnorm, counts=self._counts(),
                                    history=state.history, radius=state.radius)
        self.monitor.note(f"TrustRegionNewtonCG: {reason.name} ({reason.message}) after "
                          f"{result.iterations} iterations")
        if reason is TerminationReason.DIVERGED_LINEAR_SOLVE:
            error = ConvergenceError(
                f"the trust-region subproblem KSP {self.subproblem.name} stopped with "
                f"{step.reason} at iteration {state.iteration}; check the Hessian action "
                f"(dot_test, taylor_check) and the preconditioner, which must be SPD. The last "
                f"accepted iterate is in the exception's .result.")
            error.result = result
            raise error
        return result
