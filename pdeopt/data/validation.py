"""Input checks that run before any work: shapes, finiteness, label ranges."""

import numpy as np
from mpi4py import MPI

from pdeopt.errors import InputError

__all__ = ["check_finite", "check_batch"]


def check_finite(name, array, comm=MPI.COMM_WORLD):
    """Raise :class:`InputError` on every rank if ``array`` holds NaN or Inf on any rank."""
    bad = int(np.count_nonzero(~np.isfinite(array)))
    bad = comm.allreduce(bad, op=MPI.SUM)
    if bad:
        raise InputError(f"{name} contains {bad} NaN or Inf values; clean or impute the data "
                         f"before training (pdeopt never trains on non-finite inputs).")


def check_batch(model, x, target):
    """Validate an input block and its targets for ``model``; return them as float/int arrays.

    ``x`` must be ``(n_owned, batch, in_channels)`` and finite; labels must be integers in
    range with one per sample; target fields must match the network output and be finite.
    """
    x = np.ascontiguousarray(x, dtype=float)
    model.network.check_input(x)
    check_finite("the input data", x, model.comm)
    B = x.shape[1]
    if hasattr(model.readout, "check_targets"):
        target = model.readout.check_targets(target, B)
    elif hasattr(model.readout, "check_labels"):
        target = model.readout.check_labels(target)
        if target.shape[0] != B:
            raise InputError(f"{target.shape[0]} labels for a batch of {B} samples.")
    else:
        target = np.ascontiguousarray(target, dtype=float)
        expected = (x.shape[0], B, model.network.C)
        if target.shape != expected:
            raise InputError(f"target fields must have shape {expected}, got {target.shape}.")
        check_finite("the target fields", target, model.comm)
    return x, target
