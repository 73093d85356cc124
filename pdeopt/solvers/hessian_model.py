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
    #: The most Krylov iterations of a subproblem solve with this model at the current iterate
    #: (``None``: the subproblem solver's own limit).
    krylov_limit: int | None = None

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
    r"""``model``'s Hessian of a uniform random fraction :math:`f_k` of the batch.

    The sample is drawn afresh at every accepted iterate :math:`k` with the seed
    ``(seed, k)`` (:meth:`~pdeopt.problem.array_functional.ArrayFunctional.subsample`): the
    subsampled Hessian of Byrd, Chin, Neveitt & Nocedal (SIAM J. Optim. 2011). An action costs
    :math:`f_k` of the whole batch's. The fraction may grow geometrically once the iterates
    have settled,

    .. math::

        f_k = \min\big(1,\ f_0\,\gamma^{\max(0,\,k - k_0)}\big),

    the sample growth of Byrd, Chin, Nocedal & Wu (Math. Program. 2012) and Bollapragada, Byrd
    & Nocedal (IMA J. Numer. Anal. 2019), under which the subsampled Newton method's linear
    rate becomes superlinear; from :math:`f_k = 1` on the model is the whole batch's. A small
    sample's model is rank-deficient (its data term has rank at most :math:`|S|` times the
    outputs), so far from a minimum a Krylov solve on it should stop early: while
    :math:`f_k < 1` it takes at most ``krylov_limit`` iterations (one makes the step the
    model's minimiser along the preconditioned gradient, within the radius).

    Parameters
    ----------
    fraction
        :math:`f_0 \in (0, 1]`.
    model
        :class:`ExactHessian` (default) or :class:`GaussNewtonHessian`, of the sample.
    seed
        The seed of the draws.
    growth
        :math:`\gamma \ge 1` (1: a fixed fraction).
    growth_from
        :math:`k_0`, the accepted iterate from which the fraction grows.
    krylov_limit
        The most Krylov iterations per subproblem while the sample is not the whole batch
        (``None``: the subproblem solver's own).
    """

    whole_batch = False

    def __init__(self, fraction: float, model: HessianModel | None = None, seed: int = 0, *,
                 growth: float = 1.0, growth_from: int = 0, krylov_limit: int | None = None):
        name = "SubsampledHessian"
        fraction = real(name, "fraction", fraction, low=0, low_open=True, high=1,
                        remedy="a fraction of the batch", error=OptionError)
        seed = integer(name, "seed", seed, low=0, error=OptionError)
        growth = real(name, "growth", growth, low=1, remedy="a factor >= 1 per accepted "
                      "iterate (1: a fixed fraction)", error=OptionError)
        growth_from = integer(name, "growth_from", growth_from, low=0, error=OptionError)
        if krylov_limit is not None:
            krylov_limit = integer(name, "krylov_limit", krylov_limit, low=1, error=OptionError)
        model = ExactHessian() if model is None else model
        if not isinstance(model, (ExactHessian, GaussNewtonHessian)):
            raise OptionError(f"SubsampledHessian subsamples ExactHessian or "
                              f"GaussNewtonHessian, not {type(model).__name__}.")
        self.fraction, self.model, self.seed = float(fraction), model, seed
        self.growth, self.growth_from, self.sampled_krylov_limit = growth, growth_from, \
            krylov_limit
        self.name = f"{model.name}@{fraction:g}" + (f"x{growth:g}" if growth > 1 else "")
        self._sample, self._whole, self._current = None, False, self.fraction
        self._retired = Counts()

    def bind(self, Jhat):
        if not Jhat.subsamples:
            raise OptionError(f"SubsampledHessian needs a functional that can be subsampled; "
                              f"{type(Jhat).__name__} cannot: use ExactHessian or "
                              f"GaussNewtonHessian.")
        self._sample, self._whole, self._retired = None, False, Counts()
        return super().bind(Jhat)

    def apply(self, J, theta, direction):
        return self.model.apply(J, theta, direction)

    def action(self, theta, direction):
        if self._whole:
            return self.apply(self.Jhat, theta, direction)
        if self._sample is None:
            raise InputError("SubsampledHessian.action before accept(): no sample drawn.")
        return self.apply(self._sample, theta, direction)

    def fingerprint(self):
        return {"name": self.name, "fraction": self.fraction, "seed": self.seed,
                "growth": self.growth, "growth_from": self.growth_from,
                "krylov_limit": self.sampled_krylov_limit}

    def fraction_at(self, iteration: int) -> float:
        """:math:`f_k` of the accepted iterate ``iteration``."""
        exponent = max(0, iteration - self.growth_from)
        if self.growth == 1 or exponent == 0:
            return self.fraction
        return float(min(1.0, self.fraction * np.exp(exponent * np.log(self.growth))))

    @property
    def current_fraction(self) -> float:
        """:math:`f_k` of the current iterate."""
        return self._current

    @property
    def krylov_limit(self):
        return None if self._whole else self.sampled_krylov_limit

    def accept(self, theta, iteration):
        """Draw the sample of ``iteration``, taped at ``theta`` (none once it is the whole
        batch: the bound functional's own tape serves)."""
        self._retired = self.counts
        self._current = self.fraction_at(iteration)
        self._whole = self._current >= 1
        self._sample = None if self._whole else self.Jhat.subsample(
            self._current, (self.seed, iteration), theta=theta)

    @property
    def counts(self) -> Counts:
        """The samples' Hessian actions and the work of all their sweeps, at their fraction
        (their forward and adjoint sweeps enter only the work); once the sample is the whole
        batch, the bound functional counts its actions."""
        if self._sample is None:
            return self._retired
        c = self._sample.counts
        return self._retired + Counts(tlm=c.tlm, soa=c.soa, gauss_newton=c.gauss_newton,
                                      work=c.work)
