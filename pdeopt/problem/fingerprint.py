"""What a checkpoint records of the problem it belongs to: the model, the data, the
regulariser, as JSON values the same on every rank and for every partition of the mesh or of
the batch (sums agree to round-off, hashes exactly)."""

import hashlib

import numpy as np
from mpi4py import MPI

__all__ = ["model_fingerprint", "data_fingerprint", "regularizer_fingerprint"]


def model_fingerprint(model) -> dict:
    """The control layout, the scheme and its step, depth and channels, and the readout."""
    network = model.network
    return {"layout": [[name, list(shape)] for name, shape in
                       zip(model.layout.names, model.layout.shapes)],
            "scheme": network.scheme.name, "step": float(network.step),
            "depth": int(network.N), "channels": int(network.C),
            "readout": type(model.readout).__name__}


def _moments(field, comm, ensemble_comm):
    """Sum and sum of squares of a field block over the mesh (owned nodes) and the batch."""
    local = np.array([field.sum(), np.square(field).sum(), field.shape[1]], dtype=float)
    total = comm.allreduce(local, op=MPI.SUM)
    if ensemble_comm is not None:
        total = ensemble_comm.allreduce(total, op=MPI.SUM)
    return {"sum": float(total[0]), "sum_of_squares": float(total[1]),
            "samples": int(round(total[2] / comm.size))}


def data_fingerprint(x, target, comm, ensemble_comm=None) -> dict:
    """The input block's moments and the targets' (fields: moments; labels or values: the
    SHA-256 of the whole batch's, the members' parts in member order). Collective."""
    out = {"inputs": _moments(x, comm, ensemble_comm)}
    target = np.asarray(target)
    if target.ndim == 3:  # fields (n_owned, batch, C), distributed like x
        out["targets"] = _moments(target, comm, ensemble_comm)
    else:  # replicated over the mesh; split over the members by samples
        parts = [target] if ensemble_comm is None else ensemble_comm.allgather(target)
        whole = np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=float)
        out["targets"] = {"shape": list(whole.shape),
                          "sha256": hashlib.sha256(whole.tobytes()).hexdigest()}
    return out


def regularizer_fingerprint(regularizer) -> dict:
    """:math:`\\alpha` and :math:`\\beta` (zero without a regulariser)."""
    if regularizer is None:
        return {"alpha": 0.0, "beta": 0.0}
    return {"alpha": regularizer.alpha, "beta": regularizer.beta}
