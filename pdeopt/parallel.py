"""Communicator helpers: rank-0 output and replicated arrays."""

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

__all__ = ["print0", "broadcast_array", "is_rank0"]


def print0(*args, comm=MPI.COMM_WORLD, **kwargs):
    """Print on rank 0 of ``comm`` only (PETSc's ``PetscPrintf``)."""
    PETSc.Sys.Print(" ".join(str(a) for a in args), comm=comm, **kwargs)


def is_rank0(comm=MPI.COMM_WORLD):
    """Whether this process is rank 0 of ``comm``."""
    return comm.rank == 0


def broadcast_array(a, comm=MPI.COMM_WORLD, root=0):
    """Return rank ``root``'s array on every rank of ``comm`` (in place where possible)."""
    a = np.ascontiguousarray(a)
    comm.Bcast(a, root=root)
    return a
