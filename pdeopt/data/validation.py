"""Input checks that run before any work: shapes, finiteness, label ranges."""

from typing import TYPE_CHECKING

import numpy as np
from mpi4py import MPI

from pdeopt.errors import InputError

if TYPE_CHECKING:  # data sits below model (DESIGN.md §6): the model only as a type
    from pdeopt.model.model import Model

__all__ = ["check_finite", "check_batch"]


def check_finite(name: str, array: np.ndarray, comm: MPI.Comm = MPI.COMM_WORLD) -> None:
    """Raise :class:`InputError` on every rank if ``array`` holds NaN or Inf on any rank."""
    bad = int(np.count_nonzero(~np.isfinite(array)))
    bad = comm.allreduce(bad, op=MPI.SUM)
    if bad:
        raise InputError(f"{name} contains {bad} NaN or Inf values; clean or impute the data "
                         f"before training (pdeopt never trains on non-finite inputs).")


def check_batch(model: "Model", x, target) -> tuple[np.ndarray, np.ndarray]:
    """Validate an input block and its targets for ``model``; return them as arrays.

    ``x`` must be ``(n_owned, batch, in_channels)`` and finite (checked here and by
    :meth:`~pdeopt.model.network.Network.check_input`); the targets are checked by the readout's
    :meth:`~pdeopt.model.readout.Readout.check_target`.
    """
    x = np.ascontiguousarray(x, dtype=float)
    model.network.check_input(x)
    check_finite("the input data", x, model.comm)
    return x, model.readout.check_target(target, x.shape[1])
