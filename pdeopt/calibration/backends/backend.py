"""The interface every calibration backend implements."""

from pdeopt.calibration.space import Configuration

__all__ = ["Backend"]


class Backend:
    """A derivative-free method driving :meth:`Calibration.evaluate
    <pdeopt.calibration.Calibration.evaluate>`.

    Attributes
    ----------
    name
        The backend's name in the database.
    trains_infeasible
        Whether points violating an a priori constraint are trained (a method that needs their
        objective); otherwise they are recorded ``infeasible`` without training.
    """

    name = "backend"
    trains_infeasible = False

    def minimize(self, calibration, max_evaluations: int) -> int:
        """Drive ``calibration`` until its study holds ``max_evaluations`` evaluations of this
        backend (fewer if the method stops first); return how many it holds. Collective."""
        raise NotImplementedError

    @staticmethod
    def _start(calibration, start) -> Configuration:
        space = calibration.space
        if start is None:
            return space.default()
        return start if isinstance(start, Configuration) and start.space is space \
            else Configuration(space, start)
