"""Input checks that run before any work: dtypes, shapes, finiteness, probe pixels, seeds.

The checks of arrays that are distributed over a communicator (an input block, a network
output) are collective: every rank raises the same error, or none does, so no rank is left
waiting in a later collective call (:func:`~pdeopt.parallel.raise_collectively`).
"""

from typing import TYPE_CHECKING

import numpy as np
from mpi4py import MPI

from pdeopt.checks import integer
from pdeopt.errors import InputError
from pdeopt.parallel import raise_collectively

if TYPE_CHECKING:  # data sits below model (DESIGN.md §6): the model only as a type
    from pdeopt.model.model import Model

__all__ = ["check_finite", "check_batch", "real_array", "check_probes", "check_seed",
           "check_grid", "shown"]

#: The dtype kinds that hold real numbers (bool, signed and unsigned integers, floats).
REAL_KINDS = "biuf"


def shown(value) -> str:
    """``repr(value)`` for a message if it is short and on one line, else its type in angle
    brackets (an array or a mesh is named, not printed)."""
    text = repr(value)
    return text if len(text) <= 60 and "\n" not in text else f"<{type(value).__name__}>"


def check_finite(name: str, array: np.ndarray, comm: MPI.Comm = MPI.COMM_WORLD, *,
                 replicated: bool = False, remedy: str | None = None) -> None:
    """Raise :class:`InputError` on every rank if ``array`` holds NaN or Inf on any rank.

    ``replicated`` arrays (the same on every rank: controls, labels) are counted once.
    """
    bad = int(np.count_nonzero(~np.isfinite(array)))
    bad = comm.allreduce(bad, op=MPI.MAX if replicated else MPI.SUM)
    if bad:
        remedy = remedy or ("clean or impute the data before training (pdeopt never trains on "
                            "non-finite inputs)")
        raise InputError(f"{name} contains {bad} NaN or Inf values; {remedy}.")


def real_array(owner: str, name: str, value, comm: MPI.Comm | None = None) -> np.ndarray:
    """``value`` as a contiguous float array, or :class:`InputError` if it does not hold real
    numbers (strings, objects, complex numbers, ragged lists). With ``comm``, collective: the
    error is raised on every rank if any rank has it."""
    array, error = None, None
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as e:  # ragged nested lists
        error = InputError(f"{owner}: {name} is not an array of real numbers ({e}); pass a "
                           f"NumPy array of floats.")
    else:
        if array.dtype.kind not in REAL_KINDS:
            error = InputError(f"{owner}: {name} has dtype {array.dtype}, not a real dtype "
                               f"(bool, integer or float); pass a NumPy array of floats "
                               f"(complex values, strings and objects are refused).")
    if comm is not None:
        raise_collectively(error, comm)
    elif error is not None:
        raise error
    return np.ascontiguousarray(array, dtype=float)


def check_seed(owner: str, value, high: int | None = None) -> int:
    """A seed: an integer in ``[0, high)`` (``high`` when the generator has a bound, such as
    scikit-learn's ``random_state`` below :math:`2^{32}`)."""
    seed = integer(owner, "seed", value, low=0,
                   remedy="give a non-negative integer, the same on every rank")
    if high is not None and seed >= high:
        raise InputError(f"{owner}: seed={shown(value)} must be an integer in [0, {high}); give a "
                         f"smaller seed.")
    return seed


def check_grid(owner: str, grid) -> None:
    """Refuse a ``grid`` that is not a :class:`~pdeopt.model.grid.PixelGrid` (by its interface:
    data sits below model, so the class is not imported here)."""
    if not all(hasattr(grid, a) for a in ("shape", "cell_size", "to_field", "n_owned", "comm")):
        raise InputError(f"{owner}: grid={shown(grid)} must be a PixelGrid; build one with "
                         f"pdeopt.PixelGrid(nx, ny).")


def check_probes(owner: str, probes, shape: tuple[int, int]) -> np.ndarray:
    """Probe pixels as an integer array ``(P, 2)`` of ``(iy, ix)``, ``P >= 1``, distinct and
    inside an image of ``shape`` ``(ny, nx)``; a single pair ``(iy, ix)`` is one probe."""
    try:
        array = np.asarray(probes)
    except (TypeError, ValueError) as e:
        raise InputError(f"{owner}: probes are not an array of pixel indices ({e}); give a "
                         f"list of (iy, ix) pairs.") from None
    if array.size == 0:
        raise InputError(f"{owner}: probes={shown(probes)} is empty; give at least one (iy, ix) "
                         f"pixel to observe.")
    if array.dtype.kind not in "iu":
        raise InputError(f"{owner}: probes have dtype {array.dtype}; give integer pixel "
                         f"indices (iy, ix), not {array.dtype.kind!r}-kind values.")
    if array.shape == (2,):
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != 2:
        raise InputError(f"{owner}: probes have shape {array.shape}; give (P, 2) pixel indices "
                         f"(iy, ix).")
    array = array.astype(np.intp)
    ny, nx = shape
    outside = (array < 0).any(axis=1) | (array[:, 0] >= ny) | (array[:, 1] >= nx)
    if outside.any():
        raise InputError(f"{owner}: probes must be pixel indices (iy, ix) inside {tuple(shape)}, "
                         f"got {array[outside].tolist()}; drop or move them into the image.")
    unique, counts = np.unique(array, axis=0, return_counts=True)
    if (counts > 1).any():
        raise InputError(f"{owner}: probes repeat the pixels {unique[counts > 1].tolist()}; give "
                         f"each pixel once.")
    return array


def check_batch(model: "Model", x, target) -> tuple[np.ndarray, np.ndarray]:
    """Validate an input block and its targets for ``model``; return them as arrays.

    ``x`` must be a real ``(n_owned, batch, in_channels)`` array with ``batch >= 1``, finite
    (checked here and by :meth:`~pdeopt.model.network.Network.check_input`, collectively); the
    targets are checked by the readout's :meth:`~pdeopt.model.readout.Readout.check_target`.
    """
    x = real_array("the input data", "x", x, model.comm)
    model.network.check_input(x)
    check_finite("the input data", x, model.comm)
    return x, model.readout.check_target(target, x.shape[1])
