"""The digits as fields: a seeded stratified split and input checks that reject bad data."""

import numpy as np
import pytest
from mpi4py import MPI

import pdeopt
from problems import make_model


@pytest.fixture(scope="module")
def grid():
    return pdeopt.PixelGrid(8, comm=MPI.COMM_SELF)


def test_split_is_stratified_seeded_and_complete(grid):
    data = pdeopt.load_digits(grid, seed=3)
    sizes = {k: len(v) for k, v in data.items()}
    assert sum(sizes.values()) == 1797
    assert abs(sizes["train"] - 0.6 * 1797) <= 1 and abs(sizes["test"] - 0.2 * 1797) <= 2
    full = np.bincount(np.concatenate([d.labels for d in data.values()])) / 1797
    for d in data.values():
        assert np.max(np.abs(np.bincount(d.labels, minlength=10) / len(d) - full)) < 0.02
    again = pdeopt.load_digits(grid, seed=3)
    assert np.array_equal(again["test"].labels, data["test"].labels)
    assert not np.array_equal(pdeopt.load_digits(grid, seed=4)["test"].labels, data["test"].labels)


def test_fields_hold_the_pixels(grid):
    data = pdeopt.load_digits(grid)["validation"]
    assert data.x.shape == (64, len(data), 1)
    assert np.array_equal(grid.to_image(data.x)[..., 0], data.images)
    assert 0.0 <= data.x.min() and data.x.max() <= 1.0


@pytest.mark.parametrize("corrupt, match", [
    (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x), y), "NaN or Inf"),
    (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 3, np.inf, x), y), "NaN or Inf"),
    (lambda x, y: (x[:60], y), "must have shape"),
    (lambda x, y: (x[..., 0], y), "must have shape"),
    (lambda x, y: (x, np.where(np.arange(len(y)) == 0, 10, y)), r"must lie in \[0, 9\]"),
    (lambda x, y: (x, y - 1 - y.max()), r"must lie in \[0, 9\]"),
    (lambda x, y: (x, y[:-1]), "labels for a batch"),
    (lambda x, y: (x, y.astype(float)), "integer"),
])
def test_bad_input_is_rejected_before_any_work(corrupt, match):
    grid, model = make_model(comm=MPI.COMM_SELF)
    data = pdeopt.load_digits(grid)["train"]
    x, y = corrupt(data.x[:, :10], data.labels[:10].copy())
    with pytest.raises(pdeopt.InputError, match=match):
        pdeopt.ReducedFunctional(model, x, y)


def test_wrong_grid_for_digits():
    with pytest.raises(pdeopt.InputError, match="square 8x8"):
        pdeopt.load_digits(pdeopt.PixelGrid(6, 8, comm=MPI.COMM_SELF))


@pytest.mark.parametrize("n", [12, 15, 16])
def test_digits_on_finer_grids_are_their_bilinear_interpolants(n):
    r"""On an n×n grid the digits are the :math:`Q_1` interpolants of the 8×8 images: equal to
    scipy's bilinear interpolation to round-off, at the same split; on the 15×15 grid, whose
    even pixels are the 8×8 pixels, the coarse values exactly."""
    from scipy.interpolate import RegularGridInterpolator
    coarse = pdeopt.load_digits(pdeopt.PixelGrid(8, comm=MPI.COMM_SELF), limit=100)["test"]
    grid = pdeopt.PixelGrid(n, comm=MPI.COMM_SELF)
    fine = pdeopt.load_digits(grid, limit=100)["test"]
    assert np.array_equal(fine.labels, coarse.labels)
    images = grid.to_image(fine.x[:, :, 0])
    t = np.arange(8) / 7
    jy, jx = np.meshgrid(np.arange(n) / (n - 1), np.arange(n) / (n - 1), indexing="ij")
    for image, expected in zip(images, coarse.images):
        bilinear = RegularGridInterpolator((t, t), expected)(np.column_stack([jy.ravel(),
                                                                             jx.ravel()]))
        assert np.max(np.abs(image.ravel() - bilinear)) <= 1e-13
    if n == 15:
        assert np.max(np.abs(images[:, ::2, ::2] - coarse.images)) <= 1e-14


def test_bad_target_fields_are_rejected(grid):
    ops = pdeopt.assemble_operators(grid)
    network = pdeopt.Network(pdeopt.ParabolicScheme(ops, pdeopt.Tanh(), step=0.5), channels=2,
                             depth=1)
    model = pdeopt.Model(network, pdeopt.FieldMisfit(ops, channels=2))
    x = np.random.default_rng(0).random((grid.n_owned, 3, 1))
    with pytest.raises(pdeopt.InputError, match="target fields must have shape"):
        pdeopt.ReducedFunctional(model, x, np.zeros((grid.n_owned, 3, 1)))
    y = np.zeros((grid.n_owned, 3, 2))
    y[5, 1, 1] = np.nan
    with pytest.raises(pdeopt.InputError, match="1 NaN or Inf"):
        pdeopt.ReducedFunctional(model, x, y)
