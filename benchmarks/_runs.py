"""What the benchmark scripts share: their command line, their stores of finished runs.

Imported by the scripts beside it (``python benchmarks/<script>.py`` puts this directory on
``sys.path``).
"""

import json
import os
import sys
from pathlib import Path

from mpi4py import MPI

import pdeopt
from petsc4py import PETSc

__all__ = ["parse_args", "RunStore", "write_lines"]


def parse_args(parser, argv=None):
    """The script's own options from ``argv`` (default ``sys.argv[1:]``); the rest is PETSc's.

    Firedrake gives PETSc the whole command line when it starts, so the script's options are
    in PETSc's database too: they are taken out of it, so that they are not reported as unused
    PETSc options, and whatever ``parser`` does not know stays there (``-pdeopt_tr_ksp_type
    gltr``, ``-log_view``) for the solvers to read, and is reported if none does. An explicit
    ``argv``, which PETSc has not seen, has its rest inserted into the database.
    """
    given = argv is not None
    argv = list(argv) if given else sys.argv[1:]
    args, rest = parser.parse_known_args(argv)
    options = PETSc.Options()
    for token in argv:
        if token.startswith("--") and token not in rest:  # an option the parser consumed
            options.delValue(token.split("=", 1)[0])
    if given and rest:
        options.insertString(" ".join(rest))
    return args


class RunStore:
    """Finished runs, one JSON line each, so that a long benchmark killed part-way resumes
    (``--resume``) without redoing them.

    A line is written whole and flushed to disk when its run ends; a truncated last line is
    ignored on reading. The first line names the problems, and a store of other problems is
    refused.

    Parameters
    ----------
    path
        The ``.jsonl`` file.
    resume
        Read the runs already in ``path``; otherwise start it afresh.
    comm
        Rank 0 writes; every rank holds the records.
    problems
        What the runs are measured on, and how (a JSON-able value): the store's header.
    """

    def __init__(self, path, resume, comm, problems):
        self.path, self.comm, self.runs = Path(path), comm, {}
        header = {"problems": problems}
        if resume and self.path.exists():
            lines = self.path.read_text().splitlines() or ["{}"]
            try:
                stored = json.loads(lines[0])
            except json.JSONDecodeError:
                stored = None
            if stored != header:
                raise pdeopt.InputError(
                    f"{self.path} holds runs of other problems than these ({problems}): "
                    f"move it away, or run without --resume to start it again.")
            for line in lines[1:]:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.runs[record["key"]] = record
        elif comm.rank == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(header) + "\n")
        comm.Barrier()

    def get(self, key, run, *args, accuracy=None, **kwargs):
        """The record of run ``key``: from the file, or by calling ``run(*args, **kwargs)``.

        ``run`` returns a dict with ``curve``, ``iterations``, ``gradients``,
        ``hessian_actions``, ``work``, ``reason`` and ``theta`` (and optionally
        ``learning_rate`` and ``gradient_norm``, the gradient's norm where it stopped);
        ``accuracy(theta)``, if given, is stored as ``test_accuracy``.
        """
        if key in self.runs:
            return self.runs[key]
        r = run(*args, **kwargs)
        record = {"key": key, "curve": r["curve"], "iterations": int(r["iterations"]),
                  "gradients": int(r["gradients"]), "hessian_actions": int(r["hessian_actions"]),
                  "work": int(round(r["work"])), "reason": r["reason"],
                  "learning_rate": r.get("learning_rate"),
                  "gradient_norm": r.get("gradient_norm"),
                  "test_accuracy": None if accuracy is None else accuracy(r["theta"])}
        if self.comm.rank == 0:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())
        self.runs[key] = record
        return record


def write_lines(path, lines, comm=MPI.COMM_WORLD):
    """Write ``lines`` (JSON Lines) to ``path`` from rank 0, atomically, then barrier.

    :func:`pdeopt.parallel.write_json` writes one JSON value; this is its JSON Lines twin.
    """
    path = Path(path)
    if comm.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in lines))
        os.replace(tmp, path)
    comm.Barrier()
    return path
