"""Optimisers for reduced functionals: the TAO adapter."""

from pdeopt.solvers.tao import TAOResult, TAOSolver  # noqa: F401
