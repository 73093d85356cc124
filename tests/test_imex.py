"""The implicit layers: the PETSc solver (options with a prefix, diverged solves reported) and
the diffusion operator on non-square pixels."""

import numpy as np
import pytest
import torch
from mpi4py import MPI
from petsc4py import PETSc

import pdeopt
from problems import digits_batch
from pdeopt.model.torch_twin import TorchTwin


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


def test_non_square_pixels_agree_with_the_torch_twin():
    """On 8x6 pixels (h_x = 1/7, h_y = 1/5) the assembled M + hL is the twin's, each axis
    diffusing in its own pixel units, and so are the network and its derivatives."""
    grid = pdeopt.PixelGrid(8, 6, comm=MPI.COMM_SELF)
    ops = pdeopt.assemble_operators(grid)
    scheme = pdeopt.IMEXScheme(ops, pdeopt.Tanh(), step=0.5, diffusivity=2.0)
    model = pdeopt.Model(pdeopt.Network(scheme, channels=2, depth=2),
                         pdeopt.PooledClassifier(grid, channels=2, classes=3))
    twin = TorchTwin(model, grid)
    order = grid.iy * grid.nx + grid.ix
    A = np.zeros(scheme.A.getSize())
    A[np.ix_(order, order)] = scheme.A.convert("dense", PETSc.Mat()).getDenseArray()
    assert np.max(np.abs(A - twin.A.numpy())) <= 1e-8 * np.max(np.abs(A))
    assert ops.cell_size == (1 / 7, 1 / 5)

    rng = np.random.default_rng(0)
    x, labels = rng.random((grid.n_owned, 4, 1)), rng.integers(0, 3, 4)
    theta = model.initial_controls(seed=1, readout_scale=1.0)
    u = twin.images(model.output(theta, x)).numpy()
    u_torch = twin.output(torch.tensor(theta), twin.images(x)).numpy()
    assert np.max(np.abs(u - u_torch)) <= 1e-8 * np.max(np.abs(u_torch))
    Jhat = pdeopt.ReducedFunctional(model, x, labels, theta=theta)
    d = rng.standard_normal(Jhat.size)
    J, g, Hd = twin.derivatives(theta, twin.images(x), torch.tensor(labels), d)
    assert abs(Jhat.objective(theta) - J) <= 1e-12 * abs(J)
    assert np.linalg.norm(Jhat.gradient(theta) - g) <= 1e-8 * np.linalg.norm(g)
    assert np.linalg.norm(Jhat.hessian_action(theta, d) - Hd) <= 1e-8 * np.linalg.norm(Hd)
