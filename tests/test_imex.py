"""The implicit layers' PETSc solver: options with a prefix, diverged solves reported."""

import numpy as np
import pytest

import pdeopt
from conftest import digits_batch


def _imex(**kwargs):
    grid = pdeopt.PixelGrid(8)
    ops = pdeopt.assemble_operators(grid)
    scheme = pdeopt.IMEXScheme(ops, pdeopt.Tanh(), step=0.5, diffusivity=2.0, **kwargs)
    net = pdeopt.Network(scheme, channels=2, depth=2)
    return grid, net


def test_iterative_solver_agrees_with_cholesky():
    grid, direct = _imex()
    _, iterative = _imex(solver_parameters={"ksp_type": "cg", "pc_type": "jacobi",
                                            "ksp_rtol": 1e-13}, options_prefix="it_")
    x, _ = digits_batch(grid)
    theta = direct.initial_controls(np.random.default_rng(0))
    u1 = direct.forward(theta, x, store=False)[0]
    u2 = iterative.forward(theta, x, store=False)[0]
    assert np.max(np.abs(u1 - u2)) < 1e-10 * np.max(np.abs(u1))


def test_diverged_solve_names_petsc_reason():
    grid, net = _imex(solver_parameters={"ksp_type": "cg", "pc_type": "none", "ksp_max_it": 1,
                                         "ksp_rtol": 1e-14}, options_prefix="bad_")
    x, _ = digits_batch(grid)
    with pytest.raises(pdeopt.ConvergenceError, match="layer 0 diverged .*DIVERGED_MAX_IT"):
        net.forward(net.initial_controls(np.random.default_rng(0)), x)


def test_unknown_solver_option_is_reported():
    with pytest.raises(pdeopt.OptionError, match="pc_no_such_thing"):
        _imex(solver_parameters={"pc_no_such_thing": 3}, options_prefix="unk_")
