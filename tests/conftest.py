"""Shared small problems: real digits on the 8x8 grid, a few samples, every scheme."""

import numpy as np
import pytest
from mpi4py import MPI

import pdeopt

SCHEMES = ("forward_euler", "parabolic", "leapfrog", "imex")


def make_model(scheme="parabolic", channels=3, depth=3, final_time=1.0, comm=MPI.COMM_WORLD,
               activation="tanh", readout="classifier", opening_activation=None, basis=None):
    """A small network on the digits grid with ``scheme`` (``basis``: operator names)."""
    grid = pdeopt.PixelGrid(8, comm=comm)
    ops = pdeopt.assemble_operators(grid, basis=basis)
    cls = pdeopt.SCHEMES[scheme]
    scheme = cls(ops, pdeopt.activation(activation), step=final_time / depth)
    opening = None if opening_activation is None else pdeopt.activation(opening_activation)
    network = pdeopt.Network(scheme, channels=channels, depth=depth, opening_activation=opening)
    if readout == "classifier":
        out = pdeopt.PooledClassifier(grid, channels=channels, classes=10)
    else:
        out = pdeopt.FieldMisfit(ops.mass, comm=comm)
    return grid, pdeopt.Model(network, out)


def digits_batch(grid, n=5, seed=0):
    """The first ``n`` training digits as fields and labels."""
    train = pdeopt.load_digits(grid, seed=seed)["train"]
    return train.x[:, :n], train.labels[:n]


def make_problem(scheme="parabolic", comm=MPI.COMM_WORLD, regularize=True, seed=1, alpha=1e-2,
                 **kwargs):
    """``(grid, model, rf, theta)`` with random (seeded) controls, readout weights included."""
    grid, model = make_model(scheme, comm=comm, **kwargs)
    x, labels = digits_batch(grid)
    rng = np.random.default_rng(seed)
    theta = model.initial_controls(seed=seed)
    theta[model.network.layout.size:] = 0.1 * rng.standard_normal(model.readout.layout.size)
    reg = (pdeopt.Regularizer(model.layout, alpha=alpha, beta=1e-2, step=model.network.step)
           if regularize else None)
    rf = pdeopt.ReducedFunctional(model, x, labels, reg, theta=theta)
    return grid, model, rf, theta


@pytest.fixture(params=SCHEMES)
def scheme(request):
    return request.param
