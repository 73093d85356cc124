"""Communicator helpers: rank-0 output and rank-0 atomic files."""

import json
import os
from pathlib import Path

from mpi4py import MPI
from petsc4py import PETSc

__all__ = ["print0", "write_json", "results_dir"]


def print0(*args, comm=MPI.COMM_WORLD, **kwargs) -> None:
    """Print on rank 0 of ``comm`` only (PETSc's ``PetscPrintf``)."""
    PETSc.Sys.Print(" ".join(str(a) for a in args), comm=comm, **kwargs)


def write_json(path, obj, comm=MPI.COMM_WORLD, indent: int = 1) -> Path:
    """Write ``obj`` as JSON to ``path`` from rank 0 of ``comm``, atomically, then barrier.

    The text goes to ``path.tmp`` first and is renamed over ``path``: a reader (or a run
    killed meanwhile) sees the old file or the new one, never half of one. Collective.
    """
    path = Path(path)
    if comm.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(obj, indent=indent))
        os.replace(tmp, path)
    comm.Barrier()
    return path


def results_dir(name: str) -> Path:
    """``$PDEOPT_RESULTS/name`` (default ``results/name``), where runs write their results.

    Not created here: :func:`write_json` creates it on rank 0 when it first writes.
    """
    return Path(os.environ.get("PDEOPT_RESULTS", "results")) / name
