"""pdeopt: neural networks as PDE-constrained optimal-control problems.

A network is a discretised differential equation on a Firedrake mesh; training minimises
:math:`\\hat J(\\theta) = \\ell(Q u_N(\\theta), y) + R(\\theta)` subject to the scheme, with exact
gradients and Hessian actions from pyadjoint.

Start here::

    import pdeopt

    grid = pdeopt.PixelGrid(8)                       # 8x8 images as Q1 fields
    ops = pdeopt.assemble_operators(grid)            # nine 3x3 stencils, assembled once
    scheme = pdeopt.ParabolicScheme(ops, pdeopt.Tanh(), step=0.25)
    model = pdeopt.Model(pdeopt.Network(scheme, channels=8, depth=4),
                         pdeopt.PooledClassifier(grid, channels=8, classes=10))
    data = pdeopt.load_digits(grid)["train"]
    Jhat = pdeopt.ReducedFunctional(model, data.x, data.labels,
                                    pdeopt.Regularizer(model.layout, step=0.25),
                                    theta=model.initial_controls(seed=0))
    result = pdeopt.TAOSolver(Jhat, {"tao_type": "lmvm", "tao_max_it": 50}).solve()
"""

import firedrake  # noqa: F401  (initialises PETSc before petsc4py is imported)

from pdeopt.errors import ConvergenceError, InputError, OptionError, PdeoptError  # noqa: F401
from pdeopt.parallel import print0  # noqa: F401
from pdeopt.data import Dataset, RegressionData, diffusion_reaction_data, load_digits  # noqa: F401
from pdeopt.model import (GRID_BASIS, GRID_SHIFTS, MESH_BASIS, ControlLayout,  # noqa: F401
                          FieldMisfit, ForwardEulerScheme, IMEXScheme, LeapfrogScheme, Model,
                          Network, OperatorSet, ParabolicScheme, PixelGrid, PooledClassifier,
                          ProbeRegression, SCHEMES, SmoothReLU, Softplus, Tanh, activation,
                          assemble_operators)
from pdeopt.problem import (ControlArray, EnsembleReducedFunctional,  # noqa: F401
                            ProjectedReducedFunctional, ReducedFunctional, Regularizer,
                            dot_test, member_slice, taylor_check, training_loss)
from pdeopt.solvers import (OptimizerCheckpoint, ReducedHessian, TAOResult,  # noqa: F401
                            TAOSolver, TerminationReason, TrustRegionNewtonCG,
                            TrustRegionParameters, TrustRegionResult)
