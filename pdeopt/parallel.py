"""Communicator helpers: rank-0 output, rank-0 atomic files, and errors raised on every rank."""

import json
import os
from pathlib import Path

from mpi4py import MPI
from petsc4py import PETSc

from pdeopt.errors import PdeoptError

__all__ = ["print0", "write_json", "results_dir", "atomic_write_text", "raise_collectively",
           "on_rank0"]


def print0(*args, comm=MPI.COMM_WORLD, **kwargs) -> None:
    """Print on rank 0 of ``comm`` only (PETSc's ``PetscPrintf``)."""
    PETSc.Sys.Print(" ".join(str(a) for a in args), comm=comm, **kwargs)


def raise_collectively(error: Exception | None, comm=MPI.COMM_WORLD) -> None:
    """Raise on every rank of ``comm`` if any rank has an ``error``. Collective.

    Every rank raises the error of the lowest rank that has one (the same type and message),
    so that no rank is left waiting in a later collective call while another has raised.
    """
    errors = comm.allgather(None if error is None else (type(error), str(error)))
    first = next((e for e in errors if e is not None), None)
    if first is None:
        return
    if error is not None and (type(error), str(error)) == first:
        raise error
    cls, message = first
    raise cls(message)


def on_rank0(fn, comm=MPI.COMM_WORLD, errors=(PdeoptError, OSError, ValueError, KeyError)):
    """``fn()`` on rank 0, its value broadcast to every rank; an ``errors`` exception that it
    raises is raised on every rank instead, with its type and message. Collective."""
    outcome = None
    if comm.rank == 0:
        try:
            outcome = (True, fn())
        except errors as e:
            outcome = (False, e)
    ok, value = comm.bcast(outcome, root=0)
    if not ok:
        raise value
    return value


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` through ``path.tmp`` and a rename (on the calling rank): a
    reader, or a run killed meanwhile, sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json(path, obj, comm=MPI.COMM_WORLD, indent: int = 1) -> Path:
    """Write ``obj`` as JSON to ``path`` from rank 0 of ``comm``, atomically
    (:func:`atomic_write_text`). Collective: a failure to write (a path that is not a writable
    directory, a full disk) raises ``OSError`` on every rank."""
    return on_rank0(lambda: atomic_write_text(path, json.dumps(obj, indent=indent)), comm,
                    errors=(OSError, TypeError, ValueError))


def results_dir(name: str) -> Path:
    """``$PDEOPT_RESULTS/name`` (default ``results/name``), where runs write their results.

    Not created here: :func:`write_json` creates it on rank 0 when it first writes.
    """
    return Path(os.environ.get("PDEOPT_RESULTS", "results")) / name
