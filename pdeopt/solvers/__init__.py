"""Optimisers for array functionals: trust-region Newton-CG, its strategies, and TAO."""

from pdeopt.solvers.checkpoint import OptimizerCheckpoint  # noqa: F401
from pdeopt.solvers.hessian_model import (ExactHessian, GaussNewtonHessian,  # noqa: F401
                                          HessianModel, SubsampledHessian)
from pdeopt.solvers.preconditioners import (LMVMPC, LowRankPC,  # noqa: F401
                                            LyapunovKrasovskiiPC, RegularizerPC,
                                            TrustRegionPC)
from pdeopt.solvers.reasons import TerminationReason  # noqa: F401
from pdeopt.solvers.reduced_hessian import ReducedHessian  # noqa: F401
from pdeopt.solvers.result import OptimizationResult  # noqa: F401
from pdeopt.solvers.subproblem import (CappedCGSubproblem, KSPSubproblem,  # noqa: F401
                                       Subproblem)
from pdeopt.solvers.tao import TAOSolver  # noqa: F401
from pdeopt.solvers.trust_region import (TrustRegionNewtonCG,  # noqa: F401
                                         TrustRegionParameters, TrustRegionState)
