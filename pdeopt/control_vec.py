"""The PETSc Vec layout of the controls: distributed in PETSc's default layout, replicated as
NumPy arrays on every rank (DESIGN.md §4)."""

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

__all__ = ["create_control_vec", "vec_to_array", "array_to_vec"]


def create_control_vec(size: int, comm=MPI.COMM_WORLD) -> PETSc.Vec:
    """A control Vec of global ``size`` in PETSc's default layout over ``comm``.

    (A Vec owned wholly by rank 0 breaks TAO ``lmvm`` on 2 ranks in PETSc 3.26: an MPI error
    in ``VecNorm``.)
    """
    return PETSc.Vec().createMPI((PETSc.DECIDE, size), comm=comm)


def vec_to_array(vec: PETSc.Vec, size: int, comm) -> np.ndarray:
    """All entries of a distributed control Vec, on every rank of ``comm``."""
    out = np.empty(size)
    counts = comm.allgather(vec.getLocalSize())
    comm.Allgatherv(vec.getArray(readonly=True), (out, counts))
    return out


def array_to_vec(array: np.ndarray, vec: PETSc.Vec) -> None:
    """Set a distributed control Vec from the replicated array (each rank its own part)."""
    start, end = vec.getOwnershipRange()
    vec.setArray(array[start:end])
