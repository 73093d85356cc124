"""The readout interface: target checks, softmax cross-entropy, the inner problem of variable
projection, and the field misfit on the operators' communicator."""

import numpy as np
import pytest
import torch
from mpi4py import MPI

import pdeopt
from pdeopt.model.readout import (LinearReadout, Readout, cross_entropy, cross_entropy_gradient,
                                  cross_entropy_hessian, softmax)

PROBES = [(1, 1), (1, 6), (6, 1), (6, 6), (3, 4)]


@pytest.fixture(scope="module")
def grid():
    return pdeopt.PixelGrid(8, comm=MPI.COMM_SELF)


@pytest.fixture(scope="module")
def ops(grid):
    return pdeopt.assemble_operators(grid)


def test_every_readout_declares_the_interface(grid, ops):
    classifier = pdeopt.PooledClassifier(grid, channels=2, classes=10)
    regression = pdeopt.ProbeRegression(grid, 2, PROBES, outputs=3)
    field = pdeopt.FieldMisfit(ops, channels=2)
    for readout in (classifier, regression, field):
        assert isinstance(readout, Readout)
    assert isinstance(classifier, LinearReadout) and isinstance(regression, LinearReadout)
    assert not isinstance(field, LinearReadout)
    assert (classifier.sites, classifier.outputs, classifier.classes) == (16, 10, 10)
    assert (regression.sites, regression.outputs) == (len(PROBES), 3)
    with pytest.raises(TypeError):
        Readout()


@pytest.mark.parametrize("target, match", [
    (np.arange(4) % 10, "4 labels for a batch of 5"),
    (np.arange(5).astype(float), "integer"),
    (np.array([0, 1, 2, 3, 10]), r"must lie in \[0, 9\]"),
    (np.arange(10).reshape(5, 2), "1-D integer"),
])
def test_classifier_rejects_bad_labels(grid, target, match):
    readout = pdeopt.PooledClassifier(grid, channels=2, classes=10)
    with pytest.raises(pdeopt.InputError, match=match):
        readout.check_target(target, 5)
    assert np.array_equal(readout.check_target(np.arange(5), 5), np.arange(5))


def test_regression_rejects_bad_targets(grid):
    readout = pdeopt.ProbeRegression(grid, 2, PROBES, outputs=3)
    with pytest.raises(pdeopt.InputError, match=r"shape \(5, 3\), got \(5, 2\)"):
        readout.check_target(np.zeros((5, 2)), 5)
    bad = np.zeros((5, 3))
    bad[2, 1] = np.nan
    with pytest.raises(pdeopt.InputError, match="1 NaN or Inf"):
        readout.check_target(bad, 5)
    assert readout.check_target(np.ones((5, 3), dtype=int), 5).dtype == float


def test_field_misfit_takes_mass_and_comm_from_the_operators(grid, ops):
    readout = pdeopt.FieldMisfit(ops, channels=2)
    assert readout.comm is ops.comm and np.array_equal(readout.mass, ops.mass)
    n = grid.n_owned
    assert readout.check_target(np.zeros((n, 4, 2)), 4).shape == (n, 4, 2)
    for bad in (np.zeros((n, 4, 3)), np.zeros((n, 3, 2)), np.zeros((n - 1, 4, 2)),
                np.zeros((n, 4))):
        with pytest.raises(pdeopt.InputError, match="target fields must have shape"):
            readout.check_target(bad, 4)
    bad = np.zeros((n, 4, 2))
    bad[3, 1, 0] = np.inf
    with pytest.raises(pdeopt.InputError, match="1 NaN or Inf"):
        readout.check_target(bad, 4)
    with pytest.raises(pdeopt.InputError, match="OperatorSet"):
        pdeopt.FieldMisfit(ops.mass, channels=2)  # a raw mass array has no communicator


def test_field_misfit_value_is_the_lumped_mass_norm(grid, ops):
    readout = pdeopt.FieldMisfit(ops, channels=2)
    rng = np.random.default_rng(0)
    u, y = rng.standard_normal((2, grid.n_owned, 3, 2))
    J, r = readout.value(u, {}, y)
    assert J == pytest.approx(np.sum(ops.mass[:, None, None] * (u - y) ** 2) / 6, rel=1e-14)


def test_softmax_cross_entropy_matches_torch():
    rng = np.random.default_rng(1)
    ell = 30.0 * rng.standard_normal((6, 4))  # large logits: the shifted exponentials matter
    labels = rng.integers(0, 4, 6)
    J, p = cross_entropy(ell, labels)
    t = torch.tensor(ell, requires_grad=True)
    J_torch = torch.nn.functional.cross_entropy(t, torch.tensor(labels))
    (g,) = torch.autograd.grad(J_torch, t, create_graph=True)
    d = rng.standard_normal(ell.shape)
    (Hd,) = torch.autograd.grad(g, t, torch.tensor(d))
    assert J == pytest.approx(float(J_torch.detach()), rel=1e-14)
    assert np.array_equal(p, softmax(ell))
    assert np.allclose(p, torch.softmax(t, dim=1).detach().numpy(), rtol=1e-13, atol=1e-300)
    assert np.allclose(cross_entropy_gradient(p, labels), g.detach().numpy(), atol=1e-15)
    assert np.allclose(cross_entropy_hessian(p, d), Hd.numpy(), atol=1e-15)


def _features(readout, seed=2, B=30):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, readout.sites * readout.channels)), rng


def _inner_gradient(readout, F, target, alpha, w):
    """The gradient of J(F W^T + c) + alpha/2 |w|^2 in the readout controls, by the kernels."""
    Wt = readout.stack(w)
    Ft = np.hstack([F, np.ones((len(F), 1))])
    ell = Ft @ Wt
    if isinstance(readout, pdeopt.PooledClassifier):
        r = cross_entropy_gradient(cross_entropy(ell, target)[1], target)
    else:
        r = (ell - target) / len(F)
    return readout.unstack(Ft.T @ r + alpha * Wt)


@pytest.mark.parametrize("kind", ["classifier", "regression"])
def test_optimal_weights_and_their_hessian(grid, kind):
    if kind == "classifier":
        readout = pdeopt.PooledClassifier(grid, channels=1, classes=3)
        F, rng = _features(readout)
        target = rng.integers(0, 3, len(F))
    else:
        readout = pdeopt.ProbeRegression(grid, 2, PROBES, outputs=3)
        F, rng = _features(readout)
        target = rng.standard_normal((len(F), 3))
    alpha = 1e-2
    opt = readout.optimal_weights(F, target, alpha)
    assert np.linalg.norm(_inner_gradient(readout, F, target, alpha, opt.w)) <= 1e-11
    # H_ww^{-1} against central differences of the inner gradient
    d = rng.standard_normal(readout.layout.size)
    eps = 1e-5
    Hd = (_inner_gradient(readout, F, target, alpha, opt.w + eps * d)
          - _inner_gradient(readout, F, target, alpha, opt.w - eps * d)) / (2 * eps)
    assert np.allclose(opt.hessian_solve(Hd), d, rtol=1e-6, atol=1e-6)
    again = readout.optimal_weights(F, target, alpha, start=opt.w)
    assert np.allclose(again.w, opt.w, rtol=0, atol=1e-12)
    if kind == "classifier":
        assert opt.iterations > 0 and again.iterations == 0
        with pytest.raises(pdeopt.ConvergenceError, match="max_it = 1"):
            readout.optimal_weights(F, target, alpha, max_it=1)
        with pytest.raises(pdeopt.InputError, match="alpha > 0"):
            readout.check_alpha(0.0)
    else:
        assert opt.iterations == 0
        readout.check_alpha(0.0)


def test_activations_by_name():
    assert set(pdeopt.model.ACTIVATIONS) == {"tanh", "softplus", "smooth_relu"}
    for name, cls in pdeopt.model.ACTIVATIONS.items():
        assert cls.name == name and isinstance(pdeopt.model.activation_by_name(name), cls)
    relu = pdeopt.SmoothReLU(0.3)
    assert pdeopt.model.activation_by_name(relu) is relu
    with pytest.raises(pdeopt.OptionError, match="smooth_relu") as info:
        pdeopt.model.activation_by_name("relu")
    assert isinstance(info.value, ValueError) and not isinstance(info.value, KeyError)
    assert str(info.value).startswith("unknown activation 'relu'")
