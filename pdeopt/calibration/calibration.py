r"""A calibration: a blackbox :math:`f(x; s)` minimised over a search space by a backend, every
evaluation counted and stored.

The blackbox is a callable ``blackbox(config, seed)`` (or ``blackbox(config, seed, report)``:
see :class:`Monitor`) returning an :class:`Evaluation` or a float, where ``seed`` (the
initial-control seed) is part of the evaluation's identity. :meth:`Calibration.evaluate` is the
one door a backend uses: it looks the point up in the database, evaluates the a priori
constraints, runs the blackbox (an exception, a NaN or an infinite objective becomes a
``failed`` record, never a crash), and commits the record.
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
    records of this backend by status.
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
        The communicator of the blackbox (default: the store's).
    """

    def __init__(self, blackbox, space: SearchSpace, store: EvaluationStore,
                 study: str = "calibration", seed: int = 0, comm=None):
        if not callable(blackbox):
            raise OptionError(f"blackbox {blackbox!r} is not callable")
        self.blackbox = blackbox
        self.space = space
        self.store = store
        self.study = study
        self.seed = int(seed)
        self.comm = comm if comm is not None else getattr(store, "comm", MPI.COMM_WORLD)
        params = inspect.signature(blackbox).parameters
        self._takes_report = "report" in params or len(params) >= 3 or any(
            p.kind is p.VAR_KEYWORD for p in params.values())
        self._tally = None

    def evaluate(self, config, backend: str, trains_infeasible: bool = False,
                 should_prune=None, seed: int | None = None) -> Record:
        """The record of ``config``: from the database if evaluated (by ``backend``; a record
        of another backend is copied under ``backend``), else evaluated now and committed.

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
            ``should_prune(step, value) -> bool``, the backend's pruner, or ``None``.
        seed
            The initial-control seed (default: the calibration's).
        """
        seed = self.seed if seed is None else int(seed)
        if not isinstance(config, Configuration) or config.space is not self.space:
            config = Configuration(self.space, config)
        found = self.store.lookup(self.study, config, seed, backend=backend)
        if found is None:
            other = self.store.lookup(self.study, config, seed)
            if other is not None:
                found = self.store.insert(Record(
                    study=self.study, backend=backend, config=other.config, seed=other.seed,
                    objective=other.objective, constraints=other.constraints, work=other.work,
                    wall=0.0, status=other.status,
                    message=f"reused evaluation #{other.id} of {other.backend}",
                    intermediate=other.intermediate))
        if found is not None:
            self._count("reused")
            return found
        self._count("recorded")
        constraints = self.space.constraint_values(config)
        violated = any(c > 0 for c in constraints.values())
        if violated and not trains_infeasible:
            return self.store.insert(Record(
                study=self.study, backend=backend, config=config.key, seed=seed,
                objective=None, constraints=constraints, status=Status.INFEASIBLE,
                message="a priori constraint violated: not trained"))
        self._count("blackbox_runs")
        monitor = Monitor(should_prune)
        objective, work, status, message = self._run_blackbox(config, seed, monitor)
        if status is Status.OK and self.space.work_limit is not None:
            constraints["work_limit"] = work - self.space.work_limit
        if status is Status.OK and any(c > 0 for c in constraints.values()):
            status = Status.INFEASIBLE
        return self.store.insert(Record(
            study=self.study, backend=backend, config=config.key, seed=seed,
            objective=objective, constraints=constraints, work=work, wall=self._wall,
            status=status, message=message, intermediate=tuple(monitor.intermediate)))

    def _run_blackbox(self, config, seed, monitor):
        """(objective, work, status, message); failures on any rank are failures on all."""
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
        self._wall = self.comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
        return objective, work, status, message

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
               f"best {result.best_objective}", comm=self.comm)
        return result
