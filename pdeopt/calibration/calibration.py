r"""A calibration: a blackbox :math:`f(x; s)` minimised over a search space by a backend, every
evaluation counted and stored.

The blackbox is a callable ``blackbox(config, seed)`` (or ``blackbox(config, seed, report)``:
see :class:`Monitor`) returning an :class:`Evaluation` or a float, where ``seed`` (the
initial-control seed) is part of the evaluation's identity. :meth:`Calibration.evaluate_many`
(and :meth:`Calibration.evaluate` for one point) is the one door a backend uses: it looks the
points up in the database, evaluates the a priori constraints, runs the blackbox (an exception,
a NaN or an infinite objective becomes a ``failed`` record, never a crash), concurrently on the
members of an ensemble, and commits the records in order.
"""

import inspect
import math
import time
from dataclasses import dataclass, field

from mpi4py import MPI

from pdeopt.calibration.database import EvaluationStore, Record, Status
from pdeopt.calibration.space import Configuration, SearchSpace
from pdeopt.errors import OptionError
from pdeopt.parallel import print0

__all__ = ["Evaluation", "Pruned", "Monitor", "Calibration", "CalibrationResult"]


@dataclass(frozen=True)
class Evaluation:
    """What a blackbox returns: the objective (validation loss after the training budget),
    the work units it spent, and optionally a status and a message."""

    objective: float
    work: float = 0.0
    status: Status = Status.OK
    message: str = ""


class Pruned(Exception):
    """Raised by :meth:`Monitor.report` when the backend's pruner stops the evaluation; a
    blackbox lets it propagate (or catches it to clean up and re-raises)."""


class Monitor:
    """The ``report`` a blackbox receives: ``report(step, value)`` records an intermediate
    objective (a validation loss after ``step`` work units or iterations) and raises
    :class:`Pruned` if the backend's pruner (Optuna's successive halving, Hyperband) says the
    evaluation is not worth finishing. Backends without pruning only record."""

    def __init__(self, should_prune=None):
        self.intermediate = []
        self._should_prune = should_prune

    def __call__(self, step: float, value: float) -> None:
        self.intermediate.append((float(step), float(value)))
        if self._should_prune is not None and self._should_prune(step, value):
            raise Pruned(f"pruned at step {step} with value {value}")


@dataclass(frozen=True)
class CalibrationResult:
    """The outcome of :meth:`Calibration.run`.

    ``evaluations`` counts every point the backend asked for in this study (from the
    database when resumed). Of the points asked for in this call, ``recorded`` were new
    records (``blackbox_runs`` of them ran the blackbox; the others violated an a priori
    constraint) and ``reused`` were found in the database. ``counts`` tallies the study's
    records of this backend by status. Under an ensemble the counts are over every member
    and the same on every rank.
    """

    study: str
    backend: str
    best: Record | None
    evaluations: int
    recorded: int
    reused: int
    blackbox_runs: int
    counts: dict = field(default_factory=dict)
    records: tuple = ()

    @property
    def best_config(self) -> dict | None:
        return None if self.best is None else self.best.values()

    @property
    def best_objective(self) -> float | None:
        return None if self.best is None else self.best.objective


class Calibration:
    """The minimisation of ``blackbox`` over ``space``, one database record per evaluation.

    Parameters
    ----------
    blackbox
        ``blackbox(config, seed) -> Evaluation | float``; if it takes a third argument (or a
        keyword ``report``) it receives a :class:`Monitor`. Under MPI it is called on every rank
        of ``comm`` (a collective training) and must return the same value on each.
    space
        The :class:`SearchSpace`.
    store
        The :class:`EvaluationStore`.
    study
        The study's name in the database.
    seed
        The initial-control seed passed to the blackbox; backends seed their own generators
        from it unless given one.
    comm
        The communicator of the blackbox (default: the store's). Not with ``ensemble``.
    ensemble
        A Firedrake :class:`~firedrake.ensemble.Ensemble` whose members evaluate
        concurrently (:meth:`evaluate_many`): the blackbox runs on the member's
        ``ensemble.comm``, and the store's communicator must be ``ensemble.global_comm``.

    Notes
    -----
    **Parallel evaluations.** Under ``mpiexec -n P`` with
    ``ensemble = fd.Ensemble(COMM_WORLD, P // members)``, each member trains one
    configuration at a time on its ``P // members`` ranks, and :meth:`evaluate_many` deals a
    batch of configurations round-robin to the members. The records are gathered over
    ``ensemble.ensemble_comm`` and global rank 0 commits them in the batch's order, so the
    database has the rows of a serial run, in the same order (only ``wall`` and
    ``timestamp`` differ), and every rank sees every record. The backends batch as follows:

    - :class:`~pdeopt.calibration.RandomSearch` draws the next :attr:`members` points from
      its one seeded generator: the same points, records and best as a serial run.
    - :class:`~pdeopt.calibration.NomadBackend` sets ``BB_MAX_BLOCK_SIZE`` to
      :attr:`members` and evaluates each of NOMAD's blocks concurrently. Its path depends on
      the block size, not on how the block is evaluated: it equals a serial run with the
      same ``block_size``.
    - :class:`~pdeopt.calibration.OptunaBackend` asks :attr:`members` trials, evaluates them
      concurrently and tells them in order (Optuna's workers sharing one storage). TPE asked
      for :math:`k` trials before it hears of any suggests other points than with
      :math:`k = 1`, except in its random startup trials, so the study is consistent (every
      tell recorded) but is not the serial one. With a pruner it evaluates one trial at a
      time, on member 0, since the pruner talks to the storage on global rank 0.
    - :class:`~pdeopt.calibration.BobyqaBackend` is sequential: each point runs on member
      0, the other members wait, and the record is broadcast.

    A grid (or any fixed list of points) is one call of :meth:`evaluate_many`.

    On a cluster, several ``mpiexec`` jobs can share one Optuna study through an RDB server
    that Optuna supports: ``OptunaBackend(storage="postgresql://user@host/db")`` in every job
    (the same ``study``), each job with its own ``EvaluationStore`` file. The jobs are then
    Optuna's workers sharing the storage, each asking its next trials from the common
    history.
    """

    def __init__(self, blackbox, space: SearchSpace, store: EvaluationStore,
                 study: str = "calibration", seed: int = 0, comm=None, ensemble=None):
        if not callable(blackbox):
            raise OptionError(f"blackbox {blackbox!r} is not callable")
        self.blackbox = blackbox
        self.space = space
        self.store = store
        self.study = study
        self.seed = int(seed)
        self.ensemble = ensemble
        store_comm = getattr(store, "comm", MPI.COMM_WORLD)
        if ensemble is not None:
            if comm is not None:
                raise OptionError("pass comm= or ensemble=, not both: under an ensemble the "
                                  "blackbox runs on ensemble.comm")
            same = (MPI.IDENT, MPI.CONGRUENT)
            if MPI.Comm.Compare(store_comm, ensemble.global_comm) not in same:
                raise OptionError("the store's comm is not the ensemble's global_comm: open "
                                  "the EvaluationStore with comm=ensemble.global_comm")
            comm = ensemble.comm
        #: The blackbox's communicator (the member's under an ensemble).
        self.comm = comm if comm is not None else store_comm
        #: The communicator of the whole calibration (the store's, every member).
        self.global_comm = ensemble.global_comm if ensemble is not None else self.comm
        params = inspect.signature(blackbox).parameters
        self._takes_report = "report" in params or len(params) >= 3 or any(
            p.kind is p.VAR_KEYWORD for p in params.values())
        self._tally = None

    @property
    def members(self) -> int:
        """The number of ensemble members, that is, of concurrent evaluations (1 without
        an ensemble)."""
        return 1 if self.ensemble is None else self.ensemble.ensemble_comm.size

    def evaluate(self, config, backend: str, trains_infeasible: bool = False,
                 should_prune=None, seed: int | None = None) -> Record:
        """The record of ``config``: from the database if evaluated (by ``backend``; a record
        of another backend is copied under ``backend``), else evaluated now and committed.
        Under an ensemble it runs on member 0 and the other members wait.

        Parameters
        ----------
        config
            A :class:`Configuration` or a mapping (validated).
        backend
            The backend's name, stored with the record.
        trains_infeasible
            Run the blackbox even if an a priori constraint is violated (NOMAD's progressive
            barrier needs the objective of infeasible points); otherwise such a point is
            recorded ``infeasible`` without training.
        should_prune
            ``should_prune(step, value) -> bool``, the backend's pruner, or ``None``. It is
            called on the ranks of member 0 only and may be collective over :attr:`comm`.
        seed
            The initial-control seed (default: the calibration's).
        """
        return self.evaluate_many([config], backend, trains_infeasible=trains_infeasible,
                                  should_prune=should_prune, seed=seed)[0]

    def evaluate_many(self, configs, backend: str, trains_infeasible: bool = False,
                      should_prune=None, seed: int | None = None) -> list[Record]:
        """The records of ``configs``, in their order, the new ones evaluated concurrently on
        the ensemble's members. Collective over :attr:`global_comm`.

        Configurations found in the database (or earlier in ``configs``) are read back; the
        others are dealt round-robin to the members: in round :math:`r` member :math:`m`
        evaluates the :math:`(r k + m)`-th of them, :math:`k` = :attr:`members`. After each
        round the records are gathered over ``ensemble.ensemble_comm`` and global rank 0
        commits them in the order of ``configs``, so the database holds the rows a serial
        loop of :meth:`evaluate` writes, in the same order, and a killed run loses at most
        one round. Every rank returns the same records.

        A failed evaluation is a ``failed`` record on every rank. An exception that is not a
        failure (``BaseException``: a kill) on one member is raised on every rank after the
        records before it are committed, so no member waits for another that has stopped.

        Parameters are those of :meth:`evaluate`; ``should_prune`` is used only for a single
        evaluation, which runs on member 0.
        """
        seed = self.seed if seed is None else int(seed)
        configs = [c if isinstance(c, Configuration) and c.space is self.space
                   else Configuration(self.space, c) for c in configs]
        k = self.members
        # What each item needs: a record found, one to copy, one to write without training,
        # a training, or the record of an earlier equal item.
        plan, first = [], {}
        for i, config in enumerate(configs):
            if config.key in first:
                plan.append(("same", first[config.key]))
                self._count("reused")
                continue
            first[config.key] = i
            found = self.store.lookup(self.study, config, seed, backend=backend)
            if found is not None:
                plan.append(("found", found))
                self._count("reused")
                continue
            other = self.store.lookup(self.study, config, seed)
            if other is not None:
                plan.append(("write", Record(
                    study=self.study, backend=backend, config=other.config, seed=other.seed,
                    objective=other.objective, constraints=other.constraints,
                    work=other.work, wall=0.0, status=other.status,
                    message=f"reused evaluation #{other.id} of {other.backend}",
                    intermediate=other.intermediate)))
                self._count("reused")
                continue
            self._count("recorded")
            constraints = self.space.constraint_values(config)
            if any(c > 0 for c in constraints.values()) and not trains_infeasible:
                plan.append(("write", Record(
                    study=self.study, backend=backend, config=config.key, seed=seed,
                    objective=None, constraints=constraints, status=Status.INFEASIBLE,
                    message="a priori constraint violated: not trained")))
                continue
            self._count("blackbox_runs")
            plan.append(("run", constraints))
        pending = [i for i, (what, _) in enumerate(plan) if what == "run"]
        prune = should_prune if len(pending) == 1 else None
        member = 0 if self.ensemble is None else self.ensemble.ensemble_comm.rank
        records = [item if what == "found" else None for what, item in plan]
        committed = 0

        def commit(upto):
            # Rows in input order, as a serial loop writes them.
            nonlocal committed
            for i in range(committed, upto):
                what, item = plan[i]
                if what == "same":
                    records[i] = records[item]
                elif what != "found":
                    records[i] = self.store.insert(item)
            committed = max(committed, upto)

        for r in range(0, len(pending), k):
            mine = pending[r:r + k]
            outcome, abort = None, None
            if member < len(mine):
                i = mine[member]
                try:
                    outcome = self._record(configs[i], seed, backend, plan[i][1], prune)
                except BaseException as e:  # a kill: stop every member, not only this one
                    abort = e
            gathered = (self.ensemble.ensemble_comm.allgather(
                (outcome, None if abort is None else (type(abort), str(abort))))
                if self.ensemble is not None else [(outcome, abort and (type(abort), ""))])
            stopped = next((m for m, (_, a) in enumerate(gathered) if a is not None), None)
            for m, (record, _) in enumerate(gathered[:len(mine)]):
                if stopped is None or m < stopped:
                    plan[mine[m]] = ("write", record)
            if stopped is not None:
                commit(mine[stopped])
                if abort is not None:
                    raise abort
                cls, message = gathered[stopped][1]
                try:
                    error = cls(message)
                except Exception:
                    error = RuntimeError(f"{cls.__name__}: {message}")
                raise error
            commit(mine[-1] + 1)
        commit(len(plan))
        return records

    def _record(self, config, seed, backend, constraints, should_prune) -> Record:
        """The record of a training of ``config`` on this member (not yet committed)."""
        monitor = Monitor(should_prune)
        objective, work, status, message, wall = self._run_blackbox(config, seed, monitor)
        constraints = dict(constraints)
        if status is Status.OK and self.space.work_limit is not None:
            constraints["work_limit"] = work - self.space.work_limit
        if status is Status.OK and any(c > 0 for c in constraints.values()):
            status = Status.INFEASIBLE
        return Record(study=self.study, backend=backend, config=config.key, seed=seed,
                      objective=objective, constraints=constraints, work=work, wall=wall,
                      status=status, message=message, intermediate=tuple(monitor.intermediate))

    def _run_blackbox(self, config, seed, monitor):
        """(objective, work, status, message, wall); failures on any rank of the member are
        failures on all."""
        t0 = time.perf_counter()
        objective, work, status, message = None, 0.0, Status.OK, ""
        try:
            out = (self.blackbox(config, seed, monitor) if self._takes_report
                   else self.blackbox(config, seed))
            if not isinstance(out, Evaluation):
                out = Evaluation(objective=float(out))
            objective, work = float(out.objective), float(out.work)
            status, message = Status(out.status), out.message
            if status in (Status.OK, Status.INFEASIBLE) and not math.isfinite(objective):
                status, message = Status.FAILED, f"the objective is {objective}"
        except Pruned as e:
            status, message = Status.PRUNED, str(e)
            objective = monitor.intermediate[-1][1] if monitor.intermediate else None
        except Exception as e:  # a diverged or broken training is data, not a crash
            status, message = Status.FAILED, f"{type(e).__name__}: {e}"
        # One rank failing fails the evaluation on every rank (the lowest rank's message).
        outcomes = self.comm.allgather(None if status is not Status.FAILED else message)
        first = next((m for m in outcomes if m is not None), None)
        if first is not None:
            status, message = Status.FAILED, first
        if status is Status.FAILED:
            objective = None
        wall = self.comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
        return objective, work, status, message, wall

    def reevaluate(self, config, seeds, backend: str = "seeds") -> list[Record]:
        """The records of ``config`` with each of ``seeds`` (run or read back), to measure the
        noise of the objective over initial controls; stored under ``backend``."""
        return [self.evaluate(config, backend, seed=s) for s in seeds]

    def _count(self, what):
        if self._tally is not None:
            self._tally[what] += 1

    def run(self, backend, max_evaluations: int) -> CalibrationResult:
        """Minimise with ``backend`` until the study has ``max_evaluations`` evaluations.

        A rerun on the same database resumes: points already evaluated are read back, not
        trained again, so a killed run continues where it stopped.
        """
        if int(max_evaluations) < 1:
            raise OptionError(f"max_evaluations = {max_evaluations!r} must be >= 1")
        self._tally = {"recorded": 0, "reused": 0, "blackbox_runs": 0}
        try:
            evaluations = backend.minimize(self, int(max_evaluations))
        finally:
            tally, self._tally = self._tally, None
        records = tuple(self.store.records(self.study, backend.name))
        ok = [r for r in records if r.status is Status.OK]
        best = min(ok, key=lambda r: r.objective, default=None)
        counts = {s.value: sum(r.status is s for r in records) for s in Status}
        result = CalibrationResult(
            study=self.study, backend=backend.name, best=best,
            evaluations=int(evaluations), recorded=tally["recorded"],
            reused=tally["reused"], blackbox_runs=tally["blackbox_runs"], counts=counts,
            records=records)
        print0(f"calibration {self.study!r} with {backend.name}: {result.evaluations} "
               f"evaluations ({result.recorded} new, {result.blackbox_runs} of them run; "
               f"{result.reused} from the database), "
               f"best {result.best_objective}", comm=self.global_comm)
        return result
