"""Random search: the baseline every other backend is measured against."""

import numpy as np

from pdeopt.calibration.backends.backend import Backend

__all__ = ["RandomSearch"]


class RandomSearch(Backend):
    """Configurations drawn independently and uniformly (reals uniform in their search scale,
    :meth:`SearchSpace.sample <pdeopt.calibration.SearchSpace.sample>`).

    Parameters
    ----------
    seed
        The generator's seed (default: the calibration's seed). The sequence of points depends
        on it alone, so a resumed run replays it and finds the finished points in the database.

    Under an ensemble the next :attr:`~pdeopt.calibration.Calibration.members` points are
    evaluated concurrently: the same points in the same order as a serial run.
    """

    name = "random"

    def __init__(self, seed: int | None = None):
        self.seed = seed

    def minimize(self, calibration, max_evaluations: int) -> int:
        rng = np.random.default_rng(calibration.seed if self.seed is None else self.seed)
        k = calibration.members
        for start in range(0, max_evaluations, k):
            # The next points of the one sequence, one per ensemble member.
            batch = [calibration.space.sample(rng)
                     for _ in range(min(k, max_evaluations - start))]
            calibration.evaluate_many(batch, self.name)
        return max_evaluations
