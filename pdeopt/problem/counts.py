r"""What an optimisation spent: sweeps over the batch, Krylov iterations and their work."""

from dataclasses import asdict, dataclass, fields

__all__ = ["Counts"]


@dataclass(frozen=True)
class Counts:
    r"""Sweeps, Krylov iterations and rejected steps, with their work.

    ``work`` is the cost in forward-plus-adjoint equivalents of the whole batch,

    .. math::

        w = f\,(n_{\rm forward} + n_{\rm adjoint} + 2\,n_{\rm Hessian}),

    a Hessian or Gauss–Newton action counting two sweeps (tangent-linear and second-order
    adjoint, or tangent-linear and adjoint) and a functional of a fraction :math:`f` of the batch
    (:meth:`~pdeopt.problem.reduced_functional.ReducedFunctional.subsample`) at that fraction.
    Counts add and subtract field by field, so the counts of a solve are a difference and the
    counts of several functionals a sum.

    Attributes
    ----------
    forward, adjoint
        Forward and adjoint sweeps.
    tlm, soa, gauss_newton
        Tangent-linear sweeps, second-order adjoint sweeps (exact Hessian actions) and
        Gauss–Newton actions.
    ksp_iterations, rejected
        Krylov (or Lanczos) iterations of a solver and its rejected steps.
    work
        As above.
    """

    forward: int = 0
    adjoint: int = 0
    tlm: int = 0
    soa: int = 0
    gauss_newton: int = 0
    ksp_iterations: int = 0
    rejected: int = 0
    work: float = 0.0

    @classmethod
    def of_sweeps(cls, forward: int = 0, adjoint: int = 0, tlm: int = 0, soa: int = 0,
                  gauss_newton: int = 0, fraction: float = 1.0) -> "Counts":
        """The counts of a functional's sweeps, ``work`` computed at its batch ``fraction``."""
        work = fraction * (forward + adjoint + 2 * (soa + gauss_newton))
        return cls(forward, adjoint, tlm, soa, gauss_newton, work=float(work))

    @property
    def hessian_actions(self) -> int:
        """Exact and Gauss–Newton Hessian actions together."""
        return self.soa + self.gauss_newton

    def _combine(self, other, sign):
        if not isinstance(other, Counts):
            return NotImplemented
        return Counts(**{f.name: getattr(self, f.name) + sign * getattr(other, f.name)
                         for f in fields(self)})

    def __add__(self, other: "Counts") -> "Counts":
        return self._combine(other, 1)

    def __sub__(self, other: "Counts") -> "Counts":
        return self._combine(other, -1)

    def replace(self, **changes) -> "Counts":
        """These counts with some fields changed."""
        return Counts(**dict(asdict(self), **changes))

    def as_dict(self) -> dict:
        """The fields and ``hessian_actions``, for JSON."""
        return dict(asdict(self), hessian_actions=self.hessian_actions)

    @classmethod
    def from_dict(cls, values: dict) -> "Counts":
        """Counts from :meth:`as_dict`'s output (``hessian_actions`` is derived, so dropped)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
