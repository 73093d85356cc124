"""scikit-learn's bundled handwritten digits as fields on an 8×8 pixel grid."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pdeopt.data.validation import check_finite
from pdeopt.errors import InputError

if TYPE_CHECKING:  # data sits below model (DESIGN.md §6): the grid only as a type
    from pdeopt.model.grid import PixelGrid

__all__ = ["Dataset", "load_digits"]


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
    """The digits (1797 images, 10 classes, values scaled to [0, 1]) split three ways.

    The split is stratified and seeded, identical on every rank and independent of the mesh
    partition.

    Parameters
    ----------
    grid
        An 8×8 :class:`~pdeopt.model.grid.PixelGrid`.
    seed
        Seed of the split.
    fractions
        Train, validation and test fractions (summing to 1).
    limit
        Use only the first ``limit`` samples of a stratified subsample (for quick runs).

    Returns
    -------
    dict
        ``{"train": Dataset, "validation": Dataset, "test": Dataset}``.
    """
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    if grid.shape != (8, 8):
        raise InputError(f"the digits are 8x8 images; got a {grid.ny}x{grid.nx} grid.")
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-12:
        raise InputError(f"fractions must be three positive numbers summing to 1, got {fractions}.")
    digits = _load()
    images, labels = digits.images / 16.0, digits.target.astype(np.intp)
    if limit is not None and limit < len(labels):
        images, _, labels, _ = train_test_split(images, labels, train_size=limit,
                                                stratify=labels, random_state=seed)
    check_finite("the digits", images, grid.comm)
    f_train, f_val, f_test = fractions
    im_train, im_rest, y_train, y_rest = train_test_split(
        images, labels, train_size=f_train, stratify=labels, random_state=seed)
    im_val, im_test, y_val, y_test = train_test_split(
        im_rest, y_rest, train_size=f_val / (f_val + f_test), stratify=y_rest, random_state=seed)
    return {name: Dataset(grid.to_field(im)[:, :, None], y, im)
            for name, im, y in (("train", im_train, y_train), ("validation", im_val, y_val),
                                ("test", im_test, y_test))}
