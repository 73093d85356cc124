r"""A sum of reduced functionals of the same controls."""

from collections.abc import Sequence

import numpy as np
from mpi4py import MPI

from pdeopt.errors import InputError
from pdeopt.problem.array_functional import ArrayFunctional

__all__ = ["SumFunctional"]


class SumFunctional(ArrayFunctional):
    r""":math:`\hat J(\theta) = \sum_i \hat J_i(\theta)`: one set of controls, several
    problems (one law trained on data at several delays, each a model of its own scheme).

    Gradients and Hessian actions are the sums of the members'. A regulariser belongs in one
    member only (it would be counted once per member otherwise).

    Parameters
    ----------
    functionals
        At least one :class:`~pdeopt.problem.array_functional.ArrayFunctional`, all of the same
        size, on congruent communicators.
    """

    def __init__(self, functionals: Sequence[ArrayFunctional]):
        functionals = list(functionals) if isinstance(functionals, Sequence) else None
        if not functionals or not all(isinstance(f, ArrayFunctional) for f in functionals):
            raise InputError("SumFunctional: functionals must be a non-empty sequence of "
                             "ArrayFunctionals (pdeopt.ReducedFunctional, ...).")
        sizes = {f.size for f in functionals}
        if len(sizes) != 1:
            raise InputError(f"SumFunctional: the functionals have {sorted(sizes)} controls; "
                             f"they must share one control vector (the same layout).")
        comm = functionals[0].comm
        if any(MPI.Comm.Compare(f.comm, comm) not in (MPI.IDENT, MPI.CONGRUENT)
               for f in functionals):
            raise InputError("SumFunctional: the functionals live on different communicators; "
                             "build them on one.")
        self.functionals = functionals

    @property
    def size(self):
        return self.functionals[0].size

    @property
    def comm(self):
        return self.functionals[0].comm

    @property
    def point(self):
        return self.functionals[0].point

    @property
    def counts(self):
        total = self.functionals[0].counts
        for f in self.functionals[1:]:
            total = total + f.counts
        return total

    def fingerprint(self):
        return {"size": self.size, "members": [f.fingerprint() for f in self.functionals]}

    def _sum(self, method, *args):
        return sum((getattr(f, method)(*args) for f in self.functionals[1:]),
                   start=np.asarray(getattr(self.functionals[0], method)(*args)))

    def objective(self, theta):
        return float(self._sum("objective", theta))

    def gradient(self, theta):
        return self._sum("gradient", theta)

    def hessian_action(self, theta, direction):
        return self._sum("hessian_action", theta, direction)

    def gauss_newton_action(self, theta, direction):
        return self._sum("gauss_newton_action", theta, direction)
