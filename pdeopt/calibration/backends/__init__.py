"""Calibration backends, one thin adapter per derivative-free method: random search (the
baseline), NOMAD 4's MADS, Optuna's TPE, and Py-BOBYQA on the real subspace."""

from pdeopt.calibration.backends.backend import Backend  # noqa: F401
from pdeopt.calibration.backends.bobyqa import BobyqaBackend  # noqa: F401
from pdeopt.calibration.backends.mads import NomadBackend  # noqa: F401
from pdeopt.calibration.backends.random_search import RandomSearch  # noqa: F401
from pdeopt.calibration.backends.tpe import OptunaBackend  # noqa: F401
