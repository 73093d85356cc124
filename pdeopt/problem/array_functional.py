r"""The array-level reduced functional that every pdeopt solver minimises.

pyadjoint's ``AbstractReducedFunctional`` works on overloaded types; pdeopt's solvers work on
flat control arrays :math:`\theta \in \mathbb R^n`, replicated on every rank of ``comm``. This
module declares that interface once; the serial
(:class:`~pdeopt.problem.reduced_functional.ReducedFunctional`), ensemble
(:class:`~pdeopt.problem.ensemble.EnsembleReducedFunctional`) and projected
(:class:`~pdeopt.problem.variable_projection.ProjectedReducedFunctional`) functionals
implement it.
"""

import abc

import numpy as np
from mpi4py import MPI

from pdeopt.errors import InputError, OptionError
from pdeopt.parallel import raise_collectively
from pdeopt.problem.counts import Counts

__all__ = ["ArrayFunctional"]


class ArrayFunctional(abc.ABC):
    r""":math:`\hat J: \mathbb R^n \to \mathbb R` with its gradient and Hessian actions on arrays.

    Every method is collective over :attr:`comm` and re-evaluates only when the point changes.
    """

    #: Whether :meth:`subsample` is available (the subsampled Hessian model needs it).
    subsamples: bool = False
    #: The fraction of the whole batch this functional's sweeps cover (for :class:`Counts`).
    fraction: float = 1.0

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """The number of controls :math:`n`."""

    @property
    @abc.abstractmethod
    def comm(self):
        """The communicator the controls are replicated over."""

    @property
    @abc.abstractmethod
    def point(self) -> np.ndarray:
        """The controls of the last evaluation (a copy)."""

    @property
    @abc.abstractmethod
    def counts(self) -> Counts:
        """The sweeps done so far."""

    @abc.abstractmethod
    def objective(self, theta: np.ndarray) -> float:
        r""":math:`\hat J(\theta)`."""

    @abc.abstractmethod
    def gradient(self, theta: np.ndarray) -> np.ndarray:
        r""":math:`\nabla\hat J(\theta)` (Euclidean)."""

    @abc.abstractmethod
    def hessian_action(self, theta: np.ndarray, direction: np.ndarray) -> np.ndarray:
        r""":math:`\nabla^2\hat J(\theta)\,\dot\theta`."""

    @abc.abstractmethod
    def gauss_newton_action(self, theta: np.ndarray, direction: np.ndarray) -> np.ndarray:
        r"""The Gauss–Newton Hessian's action :math:`G(\theta)\,\dot\theta` (SPD)."""

    def fingerprint(self) -> dict:
        """What a checkpoint of a minimisation of this functional records of it, so that
        another problem cannot resume from it (JSON values, the same on every rank).
        Collective."""
        return {"size": self.size}

    def subsample(self, fraction: float, seed, theta=None) -> "ArrayFunctional":
        """The functional of a random fraction of the batch (where :attr:`subsamples`)."""
        raise OptionError(f"{type(self).__name__} cannot be subsampled: use the whole batch's "
                          f"Hessian (no SubsampledHessian).")

    def check_point(self, theta, what: str = "the starting point") -> np.ndarray:
        """``theta`` as a float array of size :attr:`size`, or an :class:`InputError` that says
        what is wrong with it (type, shape, non-finite entries), raised on every rank of
        :attr:`comm` if any rank's copy is wrong. The one check of controls and directions."""
        error = None
        try:
            theta = np.asarray(theta, dtype=float)
        except (TypeError, ValueError):
            error = InputError(f"{what} must be a finite vector of real numbers of size "
                               f"{self.size}, not a {type(theta).__name__}.")
        else:
            if theta.shape != (self.size,) or not np.all(np.isfinite(theta)):
                error = InputError(f"{what} must be a finite vector of size {self.size}; it "
                                   f"has shape {theta.shape} and "
                                   f"{np.count_nonzero(~np.isfinite(theta))} non-finite "
                                   f"entries.")
        if self.comm.allreduce(error is not None, op=MPI.LOR):
            raise_collectively(error, self.comm)
        return theta
