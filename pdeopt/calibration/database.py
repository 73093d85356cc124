"""The evaluation database: one SQLite row per blackbox evaluation, and reports read from it.

The table ``pdeopt_evaluations`` lives in an ordinary SQLite file (WAL journal), beside the
tables of Optuna's RDB storage when :class:`~pdeopt.calibration.OptunaBackend` shares the file.
Each evaluation is committed when it finishes, so a killed run loses at most the one that was
running; an evaluation is identified by (study, backend, configuration key, seed), so a resumed
run finds it (:meth:`EvaluationStore.lookup`) instead of training again. Values are JSON and
SQL numbers: no pickle.

On a cluster, several jobs can share one study through Optuna's storage on an RDB server
(``OptunaBackend(storage="postgresql://...")``); this table stays in the SQLite file of each
job's ``EvaluationStore``.
"""

import json
import math
import sqlite3
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
from mpi4py import MPI

from pdeopt.errors import CheckpointError
from pdeopt.parallel import on_rank0, print0

__all__ = ["Status", "Record", "EvaluationStore", "history", "best_so_far", "report"]

TABLE = "pdeopt_evaluations"
_COLUMNS = ("id", "study", "backend", "config", "seed", "objective", "constraints", "work",
            "wall", "status", "message", "intermediate", "timestamp")
_SCHEMA = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    study TEXT NOT NULL,
    backend TEXT NOT NULL,
    config TEXT NOT NULL,
    seed INTEGER NOT NULL,
    objective REAL,
    constraints TEXT NOT NULL,
    work REAL NOT NULL,
    wall REAL NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    intermediate TEXT NOT NULL,
    timestamp REAL NOT NULL,
    UNIQUE (study, backend, config, seed))"""


class Status(str, Enum):
    """How an evaluation ended."""

    OK = "ok"                  #: trained; a finite objective; every constraint satisfied
    FAILED = "failed"          #: the blackbox raised, or returned a NaN or infinite objective
    INFEASIBLE = "infeasible"  #: a constraint > 0 (objective present only if it was trained)
    PRUNED = "pruned"          #: stopped early by the backend's pruner (multi-fidelity)


@dataclass(frozen=True)
class Record:
    """One row of the evaluation database."""

    study: str
    backend: str
    config: str                 #: the configuration's canonical key (JSON)
    seed: int
    objective: float | None     #: ``None`` when not trained or failed
    constraints: dict = field(default_factory=dict)
    work: float = 0.0           #: work units spent (forward + adjoint equivalents)
    wall: float = 0.0           #: seconds
    status: Status = Status.OK
    message: str = ""
    intermediate: tuple = ()    #: ``(step, value)`` pairs reported during training
    timestamp: float = 0.0
    id: int | None = None

    @property
    def feasible_objective(self) -> float:
        """The objective of an ``ok`` evaluation, ``inf`` otherwise (for best-so-far)."""
        return self.objective if self.status is Status.OK else math.inf

    def values(self) -> dict:
        """The configuration as a dict."""
        return json.loads(self.config)


def _row_to_record(row) -> Record:
    d = dict(zip(_COLUMNS, row))
    return Record(study=d["study"], backend=d["backend"], config=d["config"], seed=d["seed"],
                  objective=d["objective"], constraints=json.loads(d["constraints"]),
                  work=d["work"], wall=d["wall"], status=Status(d["status"]),
                  message=d["message"],
                  intermediate=tuple(tuple(p) for p in json.loads(d["intermediate"])),
                  timestamp=d["timestamp"], id=d["id"])


def _finite_or_none(x):
    return None if x is None or not math.isfinite(x) else float(x)


class EvaluationStore:
    """The SQLite file of a calibration's evaluations.

    Parameters
    ----------
    path
        The database file; created with its table if absent. A file that is not an SQLite
        database, or whose table has other columns, raises
        :class:`~pdeopt.errors.CheckpointError` naming the file.
    comm
        Rank 0 of ``comm`` reads and writes; results are broadcast, so every rank sees the
        same records. Collective: every method.
    """

    def __init__(self, path, comm=MPI.COMM_WORLD):
        self.path = Path(path)
        self.comm = comm
        self._db = None
        on_rank0(self._open, comm)

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the file (Optuna's ``storage=``)."""
        return f"sqlite:///{self.path.resolve()}"

    def _open(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, timeout=60.0)
            db.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL survives a killed process (not a power cut) without an fsync
            # per evaluation.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            db.commit()
            columns = tuple(r[1] for r in db.execute(f"PRAGMA table_info({TABLE})"))
        except sqlite3.DatabaseError as e:
            raise CheckpointError(
                f"{self.path} is not a readable SQLite evaluation database ({e}); move it "
                f"aside or pass another path to start a new calibration") from None
        if columns != _COLUMNS:
            db.close()
            raise CheckpointError(
                f"the table {TABLE} in {self.path} has columns {list(columns)}, not "
                f"{list(_COLUMNS)}: a database of another pdeopt version; pass another path")
        self._db = db

    def close(self) -> None:
        """Close the connection (rank 0)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def _query(self, sql, args=()):
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as e:
            raise CheckpointError(f"reading {self.path} failed ({e}); the file is damaged: "
                                  f"move it aside and rerun") from None

    def lookup(self, study: str, config, seed: int, backend: str | None = None) -> Record | None:
        """The finished evaluation of ``config`` (a Configuration or its key) with ``seed`` in
        ``study`` (by ``backend``, or by any backend if ``None``; the oldest), or ``None``."""
        key = config if isinstance(config, str) else config.key
        sql = f"SELECT * FROM {TABLE} WHERE study=? AND config=? AND seed=?"
        args = [study, key, int(seed)]
        if backend is not None:
            sql += " AND backend=?"
            args.append(backend)
        rows = on_rank0(lambda: self._query(sql + " ORDER BY id LIMIT 1", args), self.comm)
        return _row_to_record(rows[0]) if rows else None

    def insert(self, record: Record) -> Record:
        """Write ``record`` and commit; returns it with its ``id`` and timestamp."""
        def write():
            try:
                cur = self._db.execute(
                    f"INSERT INTO {TABLE} ({', '.join(_COLUMNS[1:])}) "
                    f"VALUES ({', '.join('?' * (len(_COLUMNS) - 1))})",
                    (record.study, record.backend, record.config, int(record.seed),
                     _finite_or_none(record.objective),
                     json.dumps(record.constraints, sort_keys=True), float(record.work),
                     float(record.wall), Status(record.status).value, record.message,
                     json.dumps([list(p) for p in record.intermediate]), time.time()))
                self._db.commit()
                return cur.lastrowid
            except sqlite3.IntegrityError as e:
                raise CheckpointError(
                    f"{self.path} already holds the evaluation of {record.config} with seed "
                    f"{record.seed} in study {record.study!r} by {record.backend!r} ({e}); "
                    f"look it up instead of evaluating again") from None
            except sqlite3.DatabaseError as e:
                raise CheckpointError(f"writing to {self.path} failed ({e}): check the disk "
                                      f"and the file, then rerun to resume") from None
        rowid = on_rank0(write, self.comm)
        rows = on_rank0(lambda: self._query(f"SELECT * FROM {TABLE} WHERE id=?", (rowid,)),
                        self.comm)
        return _row_to_record(rows[0])

    def records(self, study: str | None = None, backend: str | None = None) -> list[Record]:
        """All records (of ``study``, of ``backend``), in the order they were written."""
        where, args = [], []
        for col, val in (("study", study), ("backend", backend)):
            if val is not None:
                where.append(f"{col}=?")
                args.append(val)
        sql = f"SELECT * FROM {TABLE}" + (" WHERE " + " AND ".join(where) if where else "")
        rows = on_rank0(lambda: self._query(sql + " ORDER BY id", args), self.comm)
        return [_row_to_record(r) for r in rows]

    def count(self, study: str | None = None, backend: str | None = None) -> int:
        """The number of records (of ``study``, of ``backend``)."""
        return len(self.records(study, backend))

    def studies(self) -> list[tuple[str, str]]:
        """The (study, backend) pairs present, in order of first appearance."""
        rows = on_rank0(lambda: self._query(
            f"SELECT study, backend FROM {TABLE} GROUP BY study, backend ORDER BY MIN(id)"),
            self.comm)
        return [tuple(r) for r in rows]

    def history(self, study: str, backend: str) -> list[Record]:
        """The evaluations of ``backend`` in ``study``, in order."""
        return self.records(study, backend)

    def best_so_far(self, study: str, backend: str) -> np.ndarray:
        """:func:`best_so_far` of :meth:`history`."""
        return best_so_far(self.records(study, backend))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        on_rank0(self.close, self.comm)


def _store(path_or_store, comm):
    if isinstance(path_or_store, EvaluationStore):
        return path_or_store
    path = Path(path_or_store)
    if not path.is_file():
        raise CheckpointError(f"no evaluation database at {path}; run a calibration first")
    return EvaluationStore(path, comm=comm)


def history(store, study: str, backend: str, comm=MPI.COMM_WORLD) -> list[Record]:
    """The evaluations of ``backend`` in ``study``, in order, from a store or a file path."""
    return _store(store, comm).records(study, backend)


def best_so_far(records) -> np.ndarray:
    """:math:`b_k = \\min_{i \\le k} f_i` over the feasible (``ok``) evaluations; ``inf``
    before the first."""
    return np.minimum.accumulate(np.array([r.feasible_objective for r in records] or [np.inf]))[
        :len(records)]


def report(path, plot=None, comm=MPI.COMM_WORLD) -> list[dict]:
    """Summarise an evaluation database: print a table (rank 0) and plot the best objective
    against evaluations, one curve per (study, backend), from the database alone.

    Parameters
    ----------
    path
        The SQLite file (or an :class:`EvaluationStore`).
    plot
        The PNG to write (default: ``path`` with the suffix ``.png``); ``False`` for none.

    Returns
    -------
    list of dict
        One summary per (study, backend): counts by status, best objective and configuration,
        total work and wall seconds.
    """
    store = _store(path, comm)
    rows = []
    curves = {}
    for study, backend in store.studies():
        recs = store.records(study, backend)
        best = min((r for r in recs if r.status is Status.OK), default=None,
                   key=lambda r: r.objective)
        rows.append({"study": study, "backend": backend, "evaluations": len(recs),
                     **{s.value: sum(r.status is s for r in recs) for s in Status},
                     "best_objective": None if best is None else best.objective,
                     "best_config": None if best is None else best.values(),
                     "work": sum(r.work for r in recs), "wall": sum(r.wall for r in recs)})
        curves[f"{study}/{backend}"] = best_so_far(recs)
    header = (f"{'study':<20} {'backend':<10} {'evals':>5} {'ok':>4} {'fail':>4} {'infs':>4} "
              f"{'prun':>4} {'best':>12} {'work':>10} {'wall s':>8}  best configuration")
    print0(header, comm=comm)
    for r in rows:
        best = "-" if r["best_objective"] is None else f"{r['best_objective']:.6g}"
        print0(f"{r['study']:<20.20} {r['backend']:<10.10} {r['evaluations']:>5} {r['ok']:>4} "
               f"{r['failed']:>4} {r['infeasible']:>4} {r['pruned']:>4} {best:>12} "
               f"{r['work']:>10.4g} {r['wall']:>8.1f}  {json.dumps(r['best_config'])}",
               comm=comm)
    if plot is not False:
        plot = Path(plot) if plot else Path(store.path).with_suffix(".png")
        on_rank0(lambda: _plot(curves, plot), comm)
    return rows


def _plot(curves, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, b in curves.items():
        ax.step(np.arange(1, len(b) + 1), np.where(np.isfinite(b), b, np.nan), where="post",
                label=label)
    finite = [v for b in curves.values() for v in b if np.isfinite(v)]
    if finite and min(finite) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best objective (feasible)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
