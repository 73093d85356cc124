"""Blackbox calibration of a network's discretisation and training: a mixed search space
with constraints (:mod:`~pdeopt.calibration.space`), backends over well-kept derivative-free
solvers (:mod:`~pdeopt.calibration.backends`), and every evaluation counted in an SQLite
database (:mod:`~pdeopt.calibration.database`), so a killed run resumes.

Start here::

    from pdeopt.calibration import (Calibration, Categorical, Evaluation, EvaluationStore,
                                    Integer, NomadBackend, Real, SearchSpace, report)

    space = SearchSpace([Integer("depth", 2, 8), Real("T", 0.5, 4.0),
                         Real("alpha", 1e-5, 1e-1, log=True),
                         Categorical("scheme", ("forward_euler", "parabolic", "imex"))],
                        constraints=[lambda c: c["T"] / c["depth"] - 0.75])

    def blackbox(config, seed, report):      # report(step, value): intermediate losses
        ...                                  # train with config, seed; return the loss
        return Evaluation(objective=loss, work=work_units)

    with EvaluationStore("calibration.sqlite") as store:
        result = Calibration(blackbox, space, store, study="digits", seed=0).run(
            NomadBackend(start=space.default()), max_evaluations=100)
    report("calibration.sqlite")             # a table and calibration.png

Under ``mpiexec -n 2``, two evaluations at a time, one per member of a Firedrake ensemble
(the same records and database rows as a serial run for random search and a grid)::

    ensemble = fd.Ensemble(COMM_WORLD, 1)    # two members of one rank
    with EvaluationStore("calibration.sqlite", comm=ensemble.global_comm) as store:
        calibration = Calibration(blackbox, space, store, study="digits", ensemble=ensemble)
        calibration.evaluate_many(grid, "grid")
        calibration.run(RandomSearch(), max_evaluations=100)
"""

from pdeopt.calibration.backends import (Backend, BobyqaBackend, NomadBackend,  # noqa: F401
                                         OptunaBackend, RandomSearch)
from pdeopt.calibration.calibration import (Calibration, CalibrationResult,  # noqa: F401
                                            Evaluation, Monitor, Pruned)
from pdeopt.calibration.database import (EvaluationStore, Record, Status,  # noqa: F401
                                         best_so_far, history, report)
from pdeopt.calibration.space import (Categorical, Configuration, Constraint,  # noqa: F401
                                      Integer, Real, SearchSpace)

__all__ = ["Integer", "Real", "Categorical", "Constraint", "SearchSpace", "Configuration",
           "EvaluationStore", "Record", "Status", "history", "best_so_far", "report",
           "Calibration", "CalibrationResult", "Evaluation", "Monitor", "Pruned",
           "Backend", "RandomSearch", "OptunaBackend", "NomadBackend", "BobyqaBackend"]
