"""Py-BOBYQA's trust-region method with quadratic interpolation models on the real subspace."""

import math

import numpy as np

from pdeopt.calibration.backends.backend import Backend
from pdeopt.calibration.database import Status
from pdeopt.errors import OptionError

__all__ = ["BobyqaBackend"]


class BobyqaBackend(Backend):
    r"""BOBYQA (Powell 2009; Cartis et al. 2019's Py-BOBYQA) over the real variables, each
    scaled to :math:`[0, 1]` (log-scaled where ``log=True``), with the integer and categorical
    variables fixed at the starting configuration.

    BOBYQA takes bounds only, so it minimises the penalised objective

    .. math:: \tilde f(x) = f(x) + \mu \sum_j \max(c_j(x), 0),

    where :math:`f` is replaced by the worst objective seen so far at a point that was not
    trained (a priori infeasible) or failed, and a failed point adds :math:`\mu` more.

    BOBYQA asks for one point at a time: under an ensemble each point runs on member 0 while
    the other members wait, and its record is broadcast to every rank.

    Parameters
    ----------
    start
        The starting configuration (default: the centre of the space); it should be feasible.
    rhobeg, rhoend
        The initial and final trust-region radii in the unit box.
    penalty
        :math:`\mu`.
    trains_infeasible
        Train points that violate an a priori constraint, so that :math:`\tilde f` is the
        continuous exact penalty (at the cost of trainings outside the feasible set).
    user_params
        Further Py-BOBYQA ``user_params`` (the defaults: coordinate initial directions and
        hard restarts).
    """

    name = "bobyqa"

    def __init__(self, start=None, rhobeg: float = 0.2, rhoend: float = 1e-3,
                 penalty: float = 10.0, trains_infeasible: bool = True, user_params=None):
        if not 0 < rhoend < rhobeg <= 0.5:
            raise OptionError(f"rhobeg = {rhobeg!r} and rhoend = {rhoend!r} must satisfy "
                              f"0 < rhoend < rhobeg <= 0.5 (radii in the unit box)")
        self.start = start
        self.rhobeg = rhobeg
        self.rhoend = rhoend
        self.penalty = penalty
        self.trains_infeasible = trains_infeasible
        # Coordinate initial directions: no random numbers, so a resumed run replays. Hard
        # restarts when rho reaches rhoend: the penalty's kink on the constraint boundary
        # otherwise stalls the trust region there.
        self.user_params = {"init.random_initial_directions": False,
                            "restarts.use_restarts": True, "restarts.use_soft_restarts": False,
                            **(user_params or {})}

    def minimize(self, calibration, max_evaluations: int) -> int:
        import pybobyqa

        space = calibration.space
        if not space.reals:
            raise OptionError("BobyqaBackend needs at least one Real variable in the space")
        base = self._start(calibration, self.start)
        count = 0
        worst = -math.inf

        def f(u):
            nonlocal count, worst
            record = calibration.evaluate(space.from_unit(u, base), self.name,
                                          trains_infeasible=self.trains_infeasible)
            count += 1
            value = record.objective
            if value is not None and record.status is not Status.FAILED:
                worst = max(worst, value)
            else:
                value = (worst if math.isfinite(worst) else 0.0) + (
                    self.penalty if record.status is Status.FAILED else 0.0)
            return value + self.penalty * sum(max(c, 0.0) for c in record.constraints.values())

        n = len(space.reals)
        pybobyqa.solve(f, space.to_unit(base), bounds=(np.zeros(n), np.ones(n)),
                       maxfun=max_evaluations, rhobeg=self.rhobeg, rhoend=self.rhoend,
                       user_params=self.user_params, do_logging=False)
        return count
