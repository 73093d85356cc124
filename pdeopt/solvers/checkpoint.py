"""Atomic, resumable optimiser checkpoints: arrays in HDF5, scalars and history as JSON."""

import json
import os
from pathlib import Path

import h5py
import numpy as np
from mpi4py import MPI

from pdeopt.errors import InputError
from pdeopt.parallel import write_json

__all__ = ["OptimizerCheckpoint"]


class OptimizerCheckpoint:
    """The state of an optimiser in a directory, replaced atomically at every save.

    ``save`` writes the arrays to ``state-<iteration>.h5``, then ``state.json`` (the scalars,
    the history and the name of that HDF5 file) through a rename, then deletes the older HDF5
    files: a run killed at any moment leaves a consistent pair. Nothing is pickled. The arrays
    are replicated, so rank 0 writes and every rank reads.

    Parameters
    ----------
    directory
        Where the state lives (created on the first save).
    comm
        The communicator of the optimiser.
    """

    def __init__(self, directory, comm=MPI.COMM_WORLD):
        self.directory, self.comm = Path(directory), comm

    @property
    def exists(self) -> bool:
        return (self.directory / "state.json").exists()

    def save(self, state: dict, arrays: dict):
        """Write ``state`` (JSON-serialisable) and ``arrays`` (name → ndarray) atomically."""
        name = f"state-{int(state['iteration']):06d}.h5"
        if self.comm.rank == 0:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / (name + ".tmp")
            with h5py.File(tmp, "w") as f:
                for key, value in arrays.items():
                    f.create_dataset(key, data=np.asarray(value))
            os.replace(tmp, self.directory / name)
        write_json(self.directory / "state.json", dict(state, arrays=name), comm=self.comm)
        if self.comm.rank == 0:
            for old in self.directory.glob("state-*.h5"):
                if old.name != name:
                    old.unlink()
        self.comm.Barrier()

    def load(self):
        """``(state, arrays)`` of the last save, on every rank."""
        if self.comm.rank == 0:
            if not self.exists:
                payload = None
            else:
                state = json.loads((self.directory / "state.json").read_text())
                with h5py.File(self.directory / state.pop("arrays"), "r") as f:
                    arrays = {key: f[key][...] for key in f}
                payload = (state, arrays)
        else:
            payload = None
        payload = self.comm.bcast(payload, root=0)
        if payload is None:
            raise InputError(f"no checkpoint in {self.directory} (state.json is missing): "
                             f"start without resume=True.")
        return payload
