"""Small problems shared by the tests: real digits on the 8x8 grid, a few samples, every
scheme; and the checks many tests make."""

import numpy as np
from mpi4py import MPI

import pdeopt

SCHEMES = tuple(pdeopt.SCHEMES)
#: Five probe points of the 8x8 grid, for the regression task.
PROBES = [(1, 1), (1, 6), (6, 1), (6, 6), (3, 4)]


def make_model(scheme="parabolic", channels=3, depth=3, final_time=1.0, comm=MPI.COMM_WORLD,
               activation="tanh", readout="classifier", opening_activation=None, basis=None):
    """A small network on the digits grid with ``scheme`` (``basis``: operator names)."""
    grid = pdeopt.PixelGrid(8, comm=comm)
    ops = pdeopt.assemble_operators(grid, basis=basis)
    cls = pdeopt.SCHEMES[scheme]
    scheme = cls(ops, pdeopt.activation_by_name(activation), step=final_time / depth)
    opening = None if opening_activation is None else pdeopt.activation_by_name(opening_activation)
    network = pdeopt.Network(scheme, channels=channels, depth=depth, opening_activation=opening)
    if readout == "classifier":
        out = pdeopt.PooledClassifier(grid, channels=channels, classes=10)
    else:
        out = pdeopt.FieldMisfit(ops, channels=channels)
    return grid, pdeopt.Model(network, out)


def digits_batch(grid, n=5, seed=0):
    """The first ``n`` training digits as fields and labels."""
    train = pdeopt.load_digits(grid, seed=seed)["train"]
    return train.x[:, :n], train.labels[:n]


def make_problem(scheme="parabolic", comm=MPI.COMM_WORLD, regularize=True, seed=1, alpha=1e-2,
                 **kwargs):
    """``(grid, model, Jhat, theta)`` with random (seeded) controls, readout weights
    included."""
    grid, model = make_model(scheme, comm=comm, **kwargs)
    x, labels = digits_batch(grid)
    theta = random_controls(model, seed)
    reg = pdeopt.Regularizer(model, alpha=alpha, beta=1e-2) if regularize else None
    Jhat = pdeopt.ReducedFunctional(model, x, labels, reg, theta=theta)
    return grid, model, Jhat, theta


def make_regression(n=24, channels=3, depth=3, alpha=1e-3, probes=PROBES, theta=None):
    """``(grid, data, Jhat)``: the probe regression on ``n`` Firedrake-generated
    diffusion-reaction samples, a parabolic network of final time 1."""
    grid = pdeopt.PixelGrid(8)
    data = pdeopt.diffusion_reaction_data(grid, n, probes, seed=1)
    ops = pdeopt.assemble_operators(grid)
    scheme = pdeopt.ParabolicScheme(ops, pdeopt.Tanh(), step=1.0 / depth)
    model = pdeopt.Model(pdeopt.Network(scheme, channels=channels, depth=depth),
                         pdeopt.ProbeRegression(grid, channels, probes, len(probes)))
    reg = pdeopt.Regularizer(model, alpha=alpha, beta=1e-2)
    Jhat = pdeopt.ReducedFunctional(model, data.x, data.targets, reg,
                                    theta=model.initial_controls(seed=1) if theta is None
                                    else theta)
    return grid, data, Jhat


def random_controls(model, seed):
    """The model's initial controls of ``seed`` with random readout weights of scale 0.1."""
    rng = np.random.default_rng(seed)
    theta = model.initial_controls(seed=seed)
    theta[model.network.layout.size:] = 0.1 * rng.standard_normal(model.readout.layout.size)
    return theta


def assert_taylor_rates(rates, first=1.9, second=2.9):
    """The Taylor remainders of a correct gradient and Hessian fall at rates 2 and 3."""
    assert rates["R1"] >= first and rates["R2"] >= second, rates["rates"]


def relative_error(a, b):
    """:math:`\\|a - b\\| / \\|b\\|`."""
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b)
