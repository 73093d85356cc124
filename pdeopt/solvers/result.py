"""What a solve produced, the same for every pdeopt solver."""

from dataclasses import dataclass, field

import numpy as np

from pdeopt.problem.counts import Counts
from pdeopt.solvers.reasons import TerminationReason

__all__ = ["OptimizationResult"]


@dataclass
class OptimizationResult:
    """The outcome of :class:`~pdeopt.solvers.trust_region.TrustRegionNewtonCG` or
    :class:`~pdeopt.solvers.tao.TAOSolver`.

    Attributes
    ----------
    theta
        The last accepted iterate, whatever the reason for stopping.
    reason
        A :class:`~pdeopt.solvers.reasons.TerminationReason`.
    iterations, objective, gradient_norm
        At the end.
    counts
        The :class:`~pdeopt.problem.counts.Counts` of the solve (across resumes): sweeps,
        Krylov iterations, rejected steps and their work.
    history
        One dict per iteration, the monitor's fields (``iteration``, ``objective``,
        ``gradient_norm``, ``seconds``, ``counts``, and the trust region's ``radius``,
        ``rho``, ``step_norm``, ``ksp_iterations``, ``ksp_reason``, ``accepted``).
    radius
        The trust-region radius at the end (``None`` for TAO).
    """

    theta: np.ndarray
    reason: TerminationReason
    iterations: int
    objective: float
    gradient_norm: float
    counts: Counts = field(default_factory=Counts)
    history: list = field(default_factory=list)
    radius: float | None = None

    @property
    def converged(self) -> bool:
        """Whether a convergence test stopped the solve."""
        return self.reason.converged

    def as_dict(self) -> dict:
        """Everything but ``theta``, JSON-serialisable (for
        :func:`~pdeopt.parallel.write_json`)."""
        return {"reason": self.reason.name, "message": self.reason.message,
                "iterations": self.iterations, "objective": self.objective,
                "gradient_norm": self.gradient_norm, "radius": self.radius,
                "counts": self.counts.as_dict(), "history": self.history}
