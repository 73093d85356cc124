r"""The model Hessian of the trust-region subproblem, as a strategy object.

At the iterate :math:`\theta_k` the subproblem minimises
:math:`m_k(p) = g_k^T p + \tfrac12 p^T H_k p`; the objects here say what :math:`H_k` is: the
exact Hessian :math:`\nabla^2\hat J(\theta_k)`, its Gauss–Newton part, or either of them for a
random fraction of the batch. The objective, the gradient and the ratio test always stay
those of the whole :math:`\hat J`, so the trust region's convergence theory (any bounded model
Hessian) holds for each.
"""

import abc

import numpy as np

from pdeopt.checks import integer, real
from pdeopt.errors import InputError, OptionError
from pdeopt.problem.array_functional import ArrayFunctional
from pdeopt.problem.counts import Counts

__all__ = ["HessianModel", "ExactHessian", "GaussNewtonHessian", "SubsampledHessian"]


class HessianModel(abc.ABC):
    """:math:`H_k` of the subproblem, for the functional it is bound to.

    A solver calls :meth:`bind` once, :meth:`accept` at the start and at every accepted
    iterate, and :meth:`action` inside the subproblem solve.
    """

    #: A short name for the monitor.
    name: str = ""
    #: Whether :math:`H_k` is the whole batch's (capped CG's second-order certificate needs it).
    whole_batch: bool = True

    def bind(self, Jhat: ArrayFunctional) -> "HessianModel":
        """Model the Hessian of ``Jhat``."""
        self.Jhat = Jhat
        return self

    @abc.abstractmethod
    def apply(self, J: ArrayFunctional, theta: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """The action of this model of ``J``'s Hessian at ``theta``."""

    def action(self, theta: np.ndarray, direction: np.ndarray) -> np.ndarray:
        r""":math:`H_k\,p` at ``theta``."""
        return self.apply(self.Jhat, theta, direction)

    def accept(self, theta: np.ndarray, iteration: int) -> None:
        """``theta`` is the iterate from ``iteration`` on."""

    @property
    def counts(self) -> Counts:
        """Sweeps done by this model beyond the bound functional's own (none)."""
        return Counts()

    def fingerprint(self) -> dict:
        """What a checkpoint records of this model."""
        return {"name": self.name}


class ExactHessian(HessianModel):
    r""":math:`H_k = \nabla^2\hat J(\theta_k)`: one tangent-linear and one second-order adjoint
    sweep per action; indefinite away from a minimum, so CG may stop on negative curvature."""

    name = "exact"

    def apply(self, J, theta, direction):
        return J.hessian_action(theta, direction)


class GaussNewtonHessian(HessianModel):
    r""":math:`H_k = J_\ell^T\nabla^2\ell\,J_\ell + H_R`, the Gauss–Newton Hessian: SPD, so far
    from a minimum CG spends its iterations on curvature that the exact Hessian's negative
    directions would cut short. One tangent-linear and one adjoint sweep per action."""

    name = "gauss_newton"

    def apply(self, J, theta, direction):
        return J.gauss_newton_action(theta, direction)


class SubsampledHessian(HessianModel):
    r"""``model``'s Hessian of a uniform random fraction :math:`f` of the batch.

    The sample is drawn afresh at every accepted iterate :math:`k` with the seed
    ``(seed, k)`` (:meth:`~pdeopt.problem.array_functional.ArrayFunctional.subsample`): the
    subsampled Hessian of Byrd, Chin, Neveitt & Nocedal (SIAM J. Optim. 2011). An action costs
    :math:`f` of the whole batch's.

    Parameters
    ----------
    fraction
        :math:`f \in (0, 1]`.
    model
        :class:`ExactHessian` (default) or :class:`GaussNewtonHessian`, of the sample.
    seed
        The seed of the draws.
    """

    whole_batch = False

    def __init__(self, fraction: float, model: HessianModel | None = None, seed: int = 0):
        fraction = real("SubsampledHessian", "fraction", fraction, low=0, low_open=True, high=1,
                        remedy="a fraction of the batch", error=OptionError)
        seed = integer("SubsampledHessian", "seed", seed, low=0, error=OptionError)
        model = ExactHessian() if model is None else model
        if not isinstance(model, (ExactHessian, GaussNewtonHessian)):
            raise OptionError(f"SubsampledHessian subsamples ExactHessian or "
                              f"GaussNewtonHessian, not {type(model).__name__}.")
        self.fraction, self.model, self.seed = float(fraction), model, seed
        self.name = f"{model.name}@{fraction:g}"
        self._sample = None
        self._retired = Counts()

    def bind(self, Jhat):
        if not Jhat.subsamples:
            raise OptionError(f"SubsampledHessian needs a functional that can be subsampled; "
                              f"{type(Jhat).__name__} cannot: use ExactHessian or "
                              f"GaussNewtonHessian.")
        self._sample, self._retired = None, Counts()
        return super().bind(Jhat)

    def apply(self, J, theta, direction):
        return self.model.apply(J, theta, direction)

    def action(self, theta, direction):
        if self._sample is None:
            raise InputError("SubsampledHessian.action before accept(): no sample drawn.")
        return self.apply(self._sample, theta, direction)

    def fingerprint(self):
        return {"name": self.name, "fraction": self.fraction, "seed": self.seed}

    def accept(self, theta, iteration):
        """Draw the sample of ``iteration``, taped at ``theta``."""
        self._retired = self.counts
        self._sample = self.Jhat.subsample(self.fraction, (self.seed, iteration), theta=theta)

    @property
    def counts(self) -> Counts:
        """The samples' Hessian actions and the work of all their sweeps, at their fraction
        (their forward and adjoint sweeps enter only the work)."""
        if self._sample is None:
            return self._retired
        c = self._sample.counts
        return self._retired + Counts(tlm=c.tlm, soa=c.soa, gauss_newton=c.gauss_newton,
                                      work=c.work)
