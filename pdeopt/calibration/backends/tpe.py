"""Optuna's tree-structured Parzen estimator, its pruners, and its RDB storage."""

import math

import numpy as np

from pdeopt.calibration.backends.backend import Backend
from pdeopt.calibration.database import Status
from pdeopt.errors import OptionError
from pdeopt.parallel import on_rank0

__all__ = ["OptunaBackend"]


class OptunaBackend(Backend):
    """TPE (Bergstra et al. 2011; Optuna's ``TPESampler``, multivariate, with the constraints
    set on each trial) on the mixed space, in an Optuna study ``"<study>/optuna"`` stored in
    the calibration's SQLite file (Optuna's tables beside ``pdeopt_evaluations``).

    A failed evaluation is a ``TrialState.FAIL`` trial, a pruned one ``PRUNED``; a point
    violating an a priori constraint is not trained and is told as a complete trial whose
    value is ``inf`` and whose constraint values rank it (constrained TPE orders infeasible
    trials by their violation). With a ``pruner`` (``optuna.pruners.SuccessiveHalvingPruner()``,
    ``HyperbandPruner()``), the blackbox's ``report(step, value)`` feeds it (multi-fidelity).

    The sampler is reseeded before each trial from (``seed``, trial number), so a trial's
    suggestion depends only on the stored history: a resumed study continues as the
    uninterrupted one would.

    Under an ensemble it asks :attr:`~pdeopt.calibration.Calibration.members` trials at a
    time, evaluates them concurrently and tells them in order (workers sharing the storage).
    TPE asked for a batch before it hears of its first trial suggests other points than one
    trial at a time, unless they are random startup trials, so a batched study is not the
    serial one; it is consistent (every trial told, one record each). With a ``pruner`` the
    trials run one at a time on member 0.

    Parameters
    ----------
    start
        A configuration enqueued as the first trial, or ``None``.
    pruner
        An Optuna pruner, or ``None`` (no pruning).
    n_startup_trials
        Random trials before TPE's model is used.
    seed
        The sampler's seed (default: the calibration's seed).
    storage
        An Optuna storage URL (default: the calibration's SQLite file). On a cluster an RDB
        server URL (``postgresql://...``) lets several jobs share one study, each job keeping
        its own evaluation table.
    """

    name = "optuna"

    def __init__(self, start=None, pruner=None, n_startup_trials: int = 10,
                 seed: int | None = None, storage: str | None = None):
        if n_startup_trials < 0:
            raise OptionError(f"n_startup_trials = {n_startup_trials!r} must be >= 0")
        self.start = start
        self.pruner = pruner
        self.n_startup_trials = n_startup_trials
        self.seed = seed
        self.storage = storage

    def minimize(self, calibration, max_evaluations: int) -> int:
        comm = calibration.global_comm
        space = calibration.space
        seed = calibration.seed if self.seed is None else self.seed
        # A pruner talks to the storage during the training, on global rank 0: one trial at a
        # time, on member 0 (whose rank 0 is global rank 0).
        k = 1 if self.pruner is not None else calibration.members
        # Optuna's storage lives on global rank 0; the other ranks receive each trial's
        # configuration.
        state = {} if comm.rank == 0 else None
        on_rank0(lambda: self._open(calibration, state), comm, errors=(Exception,))
        while True:
            keys = on_rank0(lambda: self._ask(calibration, state, seed, max_evaluations, k),
                            comm, errors=(Exception,))
            if not keys:
                break
            records = calibration.evaluate_many(
                [space.from_key(key) for key in keys], self.name,
                should_prune=self._pruner_hook(state, calibration.comm))
            on_rank0(lambda: self._tell(state, records), comm, errors=(Exception,))
        return on_rank0(lambda: len(self._finished(state)), comm, errors=(Exception,))

    def _open(self, calibration, state):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            study_name=f"{calibration.study}/{self.name}",
            storage=self.storage or calibration.store.url, direction="minimize",
            load_if_exists=True, pruner=self.pruner or optuna.pruners.NopPruner())
        state["study"] = study
        # A trial left running by a killed run fails; its evaluation, if committed, stays in
        # the database and is read back should TPE suggest the point again.
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        if self.start is not None and not study.trials:
            study.enqueue_trial(dict(self._start(calibration, self.start)))

    @staticmethod
    def _finished(state):
        import optuna

        S = optuna.trial.TrialState
        return state["study"].get_trials(deepcopy=False,
                                         states=(S.COMPLETE, S.FAIL, S.PRUNED))

    def _ask(self, calibration, state, seed, max_evaluations, k):
        import optuna

        study = state["study"]
        state["handles"] = []
        for _ in range(min(k, max_evaluations - len(self._finished(state)))):
            number = len(study.trials)
            study.sampler = optuna.samplers.TPESampler(
                n_startup_trials=self.n_startup_trials, multivariate=True,
                seed=int(np.random.SeedSequence([seed, number]).generate_state(1)[0]))
            state["handles"].append(study.ask())
        return [calibration.space.suggest(t).key for t in state["handles"]]

    def _pruner_hook(self, state, comm):
        if self.pruner is None:
            return None

        def should_prune(step, value):
            def decide():
                trial = state["handles"][0]
                trial.report(value, int(step))
                return trial.should_prune()
            return on_rank0(decide, comm, errors=(Exception,))
        return should_prune

    def _tell(self, state, records):
        import optuna

        S = optuna.trial.TrialState
        study = state["study"]
        for trial, record in zip(state["handles"], records):
            for name, value in record.constraints.items():
                trial.set_constraint(name, value)
            if record.status is Status.FAILED:
                study.tell(trial, state=S.FAIL)
            elif record.status is Status.PRUNED:
                study.tell(trial, state=S.PRUNED)
            else:
                f = record.objective
                study.tell(trial, math.inf if f is None else f)
