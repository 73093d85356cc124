"""Optimisers for reduced functionals: trust-region Newton-CG and the TAO adapter."""

from pdeopt.solvers.checkpoint import OptimizerCheckpoint  # noqa: F401
from pdeopt.solvers.reduced_hessian import ReducedHessian  # noqa: F401
from pdeopt.solvers.tao import TAOResult, TAOSolver  # noqa: F401
from pdeopt.solvers.trust_region import (TerminationReason, TrustRegionNewtonCG,  # noqa: F401
                                         TrustRegionParameters, TrustRegionResult)
