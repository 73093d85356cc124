r"""Data parallelism: the batch split over the members of a Firedrake ``Ensemble``.

Member :math:`m` holds samples :math:`\mathcal B_m` of the batch on its own spatial
communicator and tapes its own network sweep. With :math:`B = \sum_m |\mathcal B_m|`,

.. math::

    \hat J(\theta) = \sum_m \frac{|\mathcal B_m|}{B}\,\hat J_m(\theta) + R(\theta),

so the value, the gradient, the Hessian and the Gauss–Newton actions are weighted sums over
the ensemble communicator of the members' own (one allreduce each), plus the regulariser's
once. Firedrake's ``EnsembleReducedFunctional`` has no Hessian; this one has.
"""

import copy

import numpy as np
from firedrake import Ensemble
from mpi4py import MPI

from pdeopt.checks import instance
from pdeopt.errors import InputError
from pdeopt.problem.array_functional import ArrayFunctional
from pdeopt.problem.counts import Counts
from pdeopt.problem.fingerprint import (data_fingerprint, model_fingerprint,
                                        regularizer_fingerprint)
from pdeopt.problem.reduced_functional import ReducedFunctional, check_model_and_regularizer
from pdeopt.problem.regularizer import Regularizer

__all__ = ["EnsembleReducedFunctional", "member_slice"]


def member_slice(ensemble, n: int) -> slice:
    """The contiguous part of ``n`` samples that this member of ``ensemble`` holds.

    The split depends only on ``n`` and the number of members, not on the mesh partition.
    """
    members, m = ensemble.ensemble_comm.size, ensemble.ensemble_comm.rank
    if n < members:
        raise InputError(f"{n} samples cannot be split over {members} ensemble members: use "
                         f"fewer members (mpiexec -n and Ensemble's M) or more data.")
    counts = np.full(members, n // members)
    counts[: n % members] += 1
    start = int(counts[:m].sum())
    return slice(start, start + int(counts[m]))


class EnsembleReducedFunctional(ArrayFunctional):
    r""":math:`\hat J(\theta) = \sum_m (|\mathcal B_m|/B)\,\hat J_m(\theta) + R(\theta)`.

    An :class:`~pdeopt.problem.array_functional.ArrayFunctional` whose ``comm`` is the
    ensemble's global communicator, so every pdeopt solver runs on it unchanged. (Firedrake's
    ``EnsembleReducedFunctional`` works on overloaded types and has no Hessian; this one works
    on arrays and has.)

    Parameters
    ----------
    model
        The :class:`~pdeopt.model.model.Model`, built on ``ensemble.comm``.
    x, target
        This member's samples (e.g. ``data.x[:, member_slice(ensemble, n)]``).
    regularizer
        The :class:`~pdeopt.problem.regularizer.Regularizer`, added once, or ``None``.
    ensemble
        The Firedrake ``Ensemble``.
    theta
        Initial controls, the same on every rank.
    """

    subsamples = True

    def __init__(self, model, x, target, regularizer, ensemble, theta=None):
        check_model_and_regularizer("EnsembleReducedFunctional", model, regularizer)
        instance("EnsembleReducedFunctional", "ensemble", ensemble, Ensemble,
                 "firedrake.Ensemble(COMM_WORLD, ranks per member)", error=InputError)
        if MPI.Comm.Compare(model.comm, ensemble.comm) not in (MPI.IDENT, MPI.CONGRUENT):
            raise InputError("the model must be built on the ensemble's spatial communicator "
                             "(PixelGrid(..., comm=ensemble.comm)).")
        self.ensemble = ensemble
        self.regularizer = (Regularizer(model, alpha=0.0, beta=0.0) if regularizer is None
                            else regularizer)
        self._set_member(ReducedFunctional(model, x, target, None, theta=theta))

    def _set_member(self, member):
        self.member, self.model = member, member.model
        self.batch_size = self._sum(member.batch_size)
        self.weight = member.batch_size / self.batch_size

    def subsample(self, fraction: float, seed, theta=None) -> "EnsembleReducedFunctional":
        """The functional of a uniform random subset of every member's samples, as
        :meth:`ReducedFunctional.subsample`; member :math:`m` draws with the seed
        ``(*seed, m)``. Collective."""
        seed = (*np.atleast_1d(seed).tolist(), self.ensemble.ensemble_comm.rank)
        sample = copy.copy(self)
        sample._set_member(self.member.subsample(fraction, seed, theta=theta))
        sample.fraction = sample.batch_size / self.batch_size
        return sample

    @property
    def comm(self):
        """The global communicator: every rank of every member."""
        return self.ensemble.global_comm

    @property
    def size(self) -> int:
        """The number of controls."""
        return self.member.size

    @property
    def point(self) -> np.ndarray:
        """The controls of the last evaluation (a copy)."""
        return self.member.point

    @property
    def counts(self) -> Counts:
        """This member's sweeps (each member does the same number), their work at
        :attr:`fraction` of the whole ensemble's batch."""
        return self.member.counts.replace(work=self.member.counts.work
                                          * self.fraction / self.member.fraction)

    def fingerprint(self) -> dict:
        """As the serial functional's of the whole batch: a checkpoint of one resumes the
        other."""
        return {"size": self.size, "model": model_fingerprint(self.model),
                "data": data_fingerprint(self.member.x, self.member.target, self.model.comm,
                                         self.ensemble.ensemble_comm),
                "regularizer": regularizer_fingerprint(self.regularizer)}

    def _sum(self, local):
        return self.ensemble.ensemble_comm.allreduce(local, op=MPI.SUM)

    def _sum_array(self, local):
        out = np.empty_like(local)
        self.ensemble.ensemble_comm.Allreduce(self.weight * local, out, op=MPI.SUM)
        return out

    def objective(self, theta) -> float:
        r""":math:`\sum_m w_m\hat J_m(\theta) + R(\theta)`."""
        J = self._sum(self.weight * self.member.objective(theta))
        return J + self.regularizer.value(np.asarray(theta))

    def gradient(self, theta) -> np.ndarray:
        r""":math:`\sum_m w_m\nabla\hat J_m(\theta) + H_R\theta`."""
        return self._sum_array(self.member.gradient(theta)) + self.regularizer.gradient(
            np.asarray(theta))

    def hessian_action(self, theta, direction) -> np.ndarray:
        r""":math:`\sum_m w_m\nabla^2\hat J_m(\theta)\dot\theta + H_R\dot\theta`."""
        return self._sum_array(self.member.hessian_action(theta, direction)) \
            + self.regularizer.hessian_action(np.asarray(direction))

    def gauss_newton_action(self, theta, direction) -> np.ndarray:
        r""":math:`\sum_m w_m G_m(\theta)\dot\theta + H_R\dot\theta`."""
        return self._sum_array(self.member.gauss_newton_action(theta, direction)) \
            + self.regularizer.hessian_action(np.asarray(direction))
