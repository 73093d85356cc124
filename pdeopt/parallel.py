"""Communicator helpers: rank-0 output."""

from mpi4py import MPI
from petsc4py import PETSc

__all__ = ["print0"]


def print0(*args, comm=MPI.COMM_WORLD, **kwargs):
    """Print on rank 0 of ``comm`` only (PETSc's ``PetscPrintf``)."""
    PETSc.Sys.Print(" ".join(str(a) for a in args), comm=comm, **kwargs)
