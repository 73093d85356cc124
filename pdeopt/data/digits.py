r"""scikit-learn's bundled handwritten digits as fields on a pixel grid: the 8×8 images, or
their :math:`Q_1` interpolants evaluated by Firedrake at the pixels of a finer grid."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import firedrake as fd
import numpy as np
from mpi4py import MPI

from pdeopt.checks import integer, real
from pdeopt.data.validation import check_finite, check_grid, check_seed, shown
from pdeopt.errors import InputError

if TYPE_CHECKING:  # data sits below model (DESIGN.md §6): the grid only as a type
    from pdeopt.model.grid import PixelGrid

__all__ = ["Dataset", "load_digits", "resample_digits"]


@dataclass(frozen=True)
class Dataset:
    """Samples as fields: ``x`` is ``(n_owned, n, 1)`` on a grid, ``labels`` is ``(n,)``.

    ``images`` keeps the original ``(n, ny, nx)`` images (for baselines and plots).
    """

    x: np.ndarray
    labels: np.ndarray
    images: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def load_digits(grid: "PixelGrid", seed: int = 0,
                fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
                limit: int | None = None) -> dict[str, Dataset]:
    r"""The digits (1797 images, 10 classes, values scaled to [0, 1]) split three ways.

    The split is stratified and seeded, identical on every rank and independent of the mesh
    partition.

    Parameters
    ----------
    grid
        A square :class:`~pdeopt.model.grid.PixelGrid`: 8×8 (the images themselves) or
        :math:`n \times n` for any :math:`n \ge 3` (each image as the :math:`Q_1` function
        of its 64 nodal values on the unit square, evaluated at the grid's pixels: bilinear
        interpolation, computed by Firedrake; see :func:`resample_digits`).
    seed
        Seed of the split, an integer in :math:`[0, 2^{32})` (scikit-learn's ``random_state``).
    fractions
        Train, validation and test fractions (three positive numbers summing to 1).
    limit
        Use only the first ``limit`` samples of a stratified subsample (for quick runs): an
        integer :math:`\ge 1` or ``None``; every split must keep at least one sample of each of
        the 10 classes.

    Returns
    -------
    dict
        ``{"train": Dataset, "validation": Dataset, "test": Dataset}``.
    """
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    check_grid("load_digits", grid)
    if grid.ny != grid.nx:
        raise InputError(f"load_digits: the digits are square 8x8 images; got a "
                         f"{grid.ny}x{grid.nx} grid: give a square grid, e.g. "
                         f"PixelGrid(8) or PixelGrid(12).")
    seed = check_seed("load_digits", seed, high=2**32)
    fractions = _fractions(fractions)
    if limit is not None:
        limit = integer("load_digits", "limit", limit, low=1,
                        remedy="give a positive number of samples, or None for all 1797")
    digits = _load()
    images, labels = digits.images / 16.0, digits.target.astype(np.intp)
    f_train, f_val, f_test = fractions
    try:
        if limit is not None and limit < len(labels):
            images, _, labels, _ = train_test_split(images, labels, train_size=limit,
                                                    stratify=labels, random_state=seed)
        im_train, im_rest, y_train, y_rest = train_test_split(
            images, labels, train_size=f_train, stratify=labels, random_state=seed)
        im_val, im_test, y_val, y_test = train_test_split(
            im_rest, y_rest, train_size=f_val / (f_val + f_test), stratify=y_rest,
            random_state=seed)
    except ValueError as e:  # a split too small to hold every class once
        raise InputError(f"load_digits: limit={shown(limit)} and fractions={shown(fractions)} "
                         f"leave a split without every class ({e}); raise limit (at least "
                         f"about 10 / min(fractions) samples) or make the fractions less "
                         f"uneven.") from None
    check_finite("the digits", images, grid.comm)
    resample = resample_digits(grid.nx)
    return {name: Dataset(grid.to_field(resample(im))[:, :, None], y, im)
            for name, im, y in (("train", im_train, y_train), ("validation", im_val, y_val),
                                ("test", im_test, y_test))}


def resample_digits(n: int):
    r"""The map from 8×8 images ``(m, 8, 8)`` to their :math:`Q_1` interpolants at the pixels
    of an :math:`n \times n` grid, ``(m, n, n)``; the identity for :math:`n = 8`.

    Pixel :math:`(i_y, i_x)` of an 8×8 image is the nodal value at :math:`(i_x/7, i_y/7)` of
    a :math:`Q_1` function on the 7×7-cell mesh of the unit square. Firedrake's
    ``PointEvaluator`` evaluates the 64 nodal basis functions (one vector-valued function)
    at the fine pixels :math:`(j_x/(n-1), j_y/(n-1))` once, giving the interpolation matrix
    :math:`P` (:math:`n^2 \times 64`); a batch is then one product, :math:`U = X P^T`.
    Built on ``COMM_SELF``: every rank holds all images.
    """
    n = integer("load_digits", "grid size", n, low=3, remedy="a grid has at least 3 pixels")
    if n == 8:
        return lambda images: images
    coarse = fd.UnitSquareMesh(7, 7, quadrilateral=True, comm=MPI.COMM_SELF)
    xy = fd.Function(fd.VectorFunctionSpace(coarse, "Q", 1)).interpolate(
        fd.SpatialCoordinate(coarse)).dat.data_ro
    pixel = np.rint(xy[:, 1] * 7).astype(np.intp) * 8 + np.rint(xy[:, 0] * 7).astype(np.intp)
    basis = fd.Function(fd.VectorFunctionSpace(coarse, "Q", 1, dim=64))
    basis.dat.data[:] = np.eye(64)[pixel]  # component j: the nodal basis function of pixel j
    jy, jx = np.meshgrid(np.arange(n) / (n - 1), np.arange(n) / (n - 1), indexing="ij")
    points = np.column_stack([jx.ravel(), jy.ravel()])
    P = np.asarray(fd.PointEvaluator(coarse, points, tolerance=1e-10).evaluate(basis))

    def resample(images):
        images = np.asarray(images, dtype=float)
        return (images.reshape(len(images), 64) @ P.T).reshape(len(images), n, n)
    return resample


def _fractions(fractions) -> tuple[float, float, float]:
    """Three positive reals summing to 1, checked."""
    try:
        values = tuple(fractions)
    except TypeError:
        values = ()
    if len(values) != 3:
        raise InputError(f"load_digits: fractions={shown(fractions)} must be three positive "
                         f"numbers summing to 1 (train, validation, test), e.g. (0.6, 0.2, 0.2).")
    values = tuple(real("load_digits", f"fractions[{i}]", f, low=0.0, low_open=True,
                        remedy="each split gets a positive fraction of the samples")
                   for i, f in enumerate(values))
    if abs(sum(values) - 1) > 1e-12:
        raise InputError(f"load_digits: fractions={shown(fractions)} must be three positive "
                         f"numbers summing to 1, not to {sum(values)!r}; rescale them.")
    return values
