"""The iteration history of a solve and its monitor line, printed on rank 0 when switched on.

Monitoring is off by default and switched on PETSc-style: ``-<options_prefix>monitor`` on the
command line (``-pdeopt_tr_monitor``, ``-pdeopt_tao_monitor``) or ``"monitor": None`` in a
solver's ``solver_parameters``.
"""

import time

from petsc4py import PETSc

from pdeopt.parallel import print0

__all__ = ["Monitor"]


class Monitor:
    """The history of a solve: one dict per iteration, with the wall time since it began.

    Parameters
    ----------
    comm
        The solver's communicator (the line is printed on its rank 0).
    enabled
        Print a line per iteration.
    history
        The entries of an earlier part of a resumed solve, continued (default: none).
    """

    def __init__(self, comm, enabled: bool = False, history: list | None = None):
        self.comm, self.enabled = comm, enabled
        self.history = [] if history is None else history
        self._t0 = time.perf_counter() - (self.history[-1]["seconds"] if self.history else 0.0)

    @classmethod
    def from_options(cls, comm, solver_parameters: dict | None, options_prefix: str):
        """A monitor switched on by ``monitor`` in ``solver_parameters`` or by
        ``-<options_prefix>monitor``, and the parameters without that key."""
        params = dict(solver_parameters or {})
        enabled = params.pop("monitor", False)
        enabled = True if enabled is None else bool(enabled)
        name = options_prefix + "monitor"
        if PETSc.Options().hasName(name):
            enabled = PETSc.Options().getBool(name, True)
        return cls(comm, enabled), params

    @property
    def seconds(self) -> float:
        """Wall time since the solve began (its earlier parts included)."""
        return time.perf_counter() - self._t0

    def record(self, line: str, **entry) -> dict:
        """Append ``entry`` with the wall time, and print ``line`` if enabled."""
        entry["seconds"] = self.seconds
        self.history.append(entry)
        self.note(line)
        return entry

    def note(self, line: str) -> None:
        """Print ``line`` on rank 0 if enabled."""
        if self.enabled and line:
            print0(line, comm=self.comm)
