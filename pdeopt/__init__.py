r"""pdeopt: neural networks as PDE-constrained optimal-control problems.

A network is a discretised differential equation on a Firedrake mesh; training minimises
:math:`\hat J(\theta) = \ell(Q u_N(\theta), y) + R(\theta)` subject to the scheme, with exact
gradients and Hessian actions from pyadjoint, by trust-region Newton-CG or PETSc TAO.

Start here (the README's example; ``tests/test_readme.py`` runs both)::

    import pdeopt

    grid = pdeopt.PixelGrid(8)                   # 8×8 images as Q1 fields on a quad mesh
    ops = pdeopt.assemble_operators(grid, basis=tuple(pdeopt.GRID_SHIFTS))  # 3×3 stencils
    scheme = pdeopt.ParabolicScheme(ops, pdeopt.Tanh(), step=0.25)
    model = pdeopt.Model(pdeopt.Network(scheme, channels=8, depth=4),
                         pdeopt.PooledClassifier(grid, channels=8, classes=10))
    train = pdeopt.load_digits(grid)["train"]    # scikit-learn's digits, 60/20/20 split
    Jhat = pdeopt.ReducedFunctional(
        model, train.x, train.labels, pdeopt.Regularizer(model, alpha=1e-3, beta=1e-2),
        theta=model.initial_controls(seed=0, scale=2.5, readout_scale=1.0))
    theta = Jhat.point
    g = Jhat.gradient(theta)                     # one adjoint sweep
    Hg = Jhat.hessian_action(theta, g)           # tangent-linear + second-order adjoint
    print(pdeopt.taylor_check(Jhat, theta, g)["R2"])   # about 3

    solver = pdeopt.TrustRegionNewtonCG(
        Jhat,
        parameters={"max_it": 20, "max_seconds": 600},         # the outer loop
        hessian=pdeopt.SubsampledHessian(0.05, pdeopt.GaussNewtonHessian(),  # a twentieth,
                                         krylov_limit=1),                    # one CG step
        preconditioner=pdeopt.LMVMPC(),                        # also the trust-region norm
        solver_parameters={"ksp_max_it": 30, "monitor": None},  # the KSP; print per iteration
        checkpoint="ckpt")                                     # the state, after every step
    result = solver.solve()                                    # solve(resume=True) continues
    print(result.reason.name, result.objective, result.counts.work)
    pdeopt.write_json("history.json", result.as_dict())
"""

import firedrake  # noqa: F401  (initialises PETSc before petsc4py is imported)

from pdeopt.allocator import keep_freed_memory

# Errors: every failure names its cause and a remedy.
from pdeopt.errors import (CheckpointError, ControlDomainError, ConvergenceError, InputError,
                           OptionError, PdeoptError)
# Data as fields on the grid.
from pdeopt.data import (AdvectionData, Dataset, RegressionData, advection_data, cfl_steps,
                         courant_number, diffusion_reaction_data, front_profile, integrate_delay,
                         load_digits)
# The network: grid, stencil operators, schemes, activations, readouts.
from pdeopt.model import (ACTIVATIONS, GRID_BASIS, GRID_SHIFTS, MESH_BASIS, SCHEMES,
                          DelayedPerceptron, DelayForcing, DelayScheme, FieldMisfit,
                          ForwardEulerScheme, HutchinsonLaw, HybridDelayLaw, IMEXScheme,
                          LeapfrogScheme, LinearDelayLaw, LinearReadout, MackeyGlassLaw, Model,
                          Network, ParabolicScheme, PixelGrid, PointDomain, PooledClassifier,
                          ProbeRegression, Readout, SmoothReLU, Softplus, Tanh, VerletScheme,
                          activation_by_name, assemble_operators)
# The optimal-control problem: reduced functionals on arrays, the regulariser, checks.
from pdeopt.problem import (ArrayFunctional, Counts, EnsembleReducedFunctional,
                            ProjectedReducedFunctional, ReducedFunctional, Regularizer,
                            SumFunctional, dot_test, member_slice, taylor_check)
# Analysis: the linear stability of the layers, their consistency under refinement, and
# learned Lyapunov-Krasovskii functionals of delay layers.
from pdeopt.analysis import (ConsistencyStudy, ControlPath, KrasovskiiCertificate,
                             LayerStability, LinearDelayEquation, LyapunovKrasovskiiFunctional,
                             LyapunovKrasovskiiLoss, StabilityReport, certify,
                             consistency_study, independent_path, smooth_path, stability_column,
                             stability_report, step_bound)
# Calibration: search spaces, the SQLite evaluation store, the backends.
from pdeopt.calibration import (BobyqaBackend, Calibration, CalibrationResult, Categorical,
                                Configuration, Constraint, Evaluation, EvaluationStore,
                                Integer, NomadBackend, OptunaBackend, Pruned, RandomSearch,
                                Real, SearchSpace)
# Solvers: trust-region Newton-CG with its strategies and preconditioners, and PETSc TAO.
from pdeopt.solvers import (CappedCGSubproblem, ExactHessian, GaussNewtonHessian,
                            KSPSubproblem, LMVMPC, LowRankPC, LyapunovKrasovskiiPC,
                            OptimizationResult, RegularizerPC, SubsampledHessian, TAOSolver,
                            TerminationReason, TrustRegionNewtonCG, TrustRegionParameters)
# Parallel output: rank 0 prints and writes.
from pdeopt.parallel import print0, results_dir, write_json

keep_freed_memory()  # large temporaries reused, not page-faulted in again (pdeopt.allocator)

__all__ = [
    # the allocator
    "keep_freed_memory",
    # errors
    "PdeoptError", "InputError", "OptionError", "ConvergenceError", "CheckpointError",
    "ControlDomainError",
    # data
    "Dataset", "RegressionData", "load_digits", "diffusion_reaction_data",
    "AdvectionData", "advection_data", "cfl_steps", "courant_number", "front_profile",
    "integrate_delay",
    # the network
    "PixelGrid", "assemble_operators", "GRID_BASIS", "GRID_SHIFTS", "MESH_BASIS",
    "ForwardEulerScheme", "ParabolicScheme", "LeapfrogScheme", "IMEXScheme", "VerletScheme",
    "SCHEMES", "PointDomain", "DelayScheme", "DelayForcing", "DelayedPerceptron",
    "LinearDelayLaw", "MackeyGlassLaw", "HutchinsonLaw", "HybridDelayLaw",
    "Tanh", "SmoothReLU", "Softplus", "ACTIVATIONS", "activation_by_name", "Network",
    "Readout", "LinearReadout", "PooledClassifier", "ProbeRegression", "FieldMisfit", "Model",
    # the problem
    "ArrayFunctional", "ReducedFunctional", "EnsembleReducedFunctional", "member_slice",
    "ProjectedReducedFunctional", "SumFunctional", "Regularizer", "Counts", "taylor_check",
    "dot_test",
    # analysis
    "stability_report", "step_bound", "stability_column", "StabilityReport", "LayerStability",
    "consistency_study", "ConsistencyStudy", "ControlPath", "smooth_path", "independent_path",
    "LinearDelayEquation", "LyapunovKrasovskiiFunctional", "LyapunovKrasovskiiLoss",
    "LyapunovKrasovskiiPC", "KrasovskiiCertificate", "certify",
    # calibration
    "SearchSpace", "Integer", "Real", "Categorical", "Constraint", "Configuration",
    "Calibration", "CalibrationResult", "Evaluation", "Pruned", "EvaluationStore",
    "RandomSearch", "OptunaBackend", "NomadBackend", "BobyqaBackend",
    # solvers
    "TrustRegionNewtonCG", "TrustRegionParameters", "ExactHessian", "GaussNewtonHessian",
    "SubsampledHessian", "KSPSubproblem", "CappedCGSubproblem", "LMVMPC", "RegularizerPC",
    "LowRankPC", "TAOSolver", "OptimizationResult", "TerminationReason",
    # parallel output
    "print0", "write_json", "results_dir",
]
