"""Images as fields: a structured quadrilateral mesh whose vertices are the pixels."""

import numpy as np
import firedrake as fd
from mpi4py import MPI

from pdeopt.checks import integer
from pdeopt.data.validation import shown
from pdeopt.errors import InputError

__all__ = ["PixelGrid"]


class PixelGrid:
    r"""An ``nx`` × ``ny`` image as a :math:`Q_1` field on a quadrilateral mesh of the unit square.

    Pixel :math:`(i_y, i_x)` is the vertex :math:`(x, y) = (i_x h_x, i_y h_y)`,
    :math:`h_x = 1/(n_x - 1)`, :math:`h_y = 1/(n_y - 1)` (the :attr:`cell_size`; the pixels are
    rectangles unless :math:`n_x = n_y`), and its value is the nodal value of a :math:`Q_1`
    function, so the lumped :math:`Q_1` mass matrix is the trapezoidal rule on the image. The
    mesh is partitioned over ``comm``; each rank holds the pixels it owns, found by coordinates,
    so data placement does not depend on the partition.

    Parameters
    ----------
    nx, ny
        Pixels per row and per column, integers (at least 3 each; ``ny`` defaults to ``nx``).
    comm
        Spatial communicator.
    """

    def __init__(self, nx: int, ny: int | None = None, *, comm: MPI.Comm = MPI.COMM_WORLD):
        remedy = "a grid needs at least 3 pixels per side (the second differences' stencil)"
        nx = integer("PixelGrid", "nx", nx, low=3, remedy=remedy)
        ny = nx if ny is None else integer("PixelGrid", "ny", ny, low=3, remedy=remedy)
        if not isinstance(comm, MPI.Comm):
            raise InputError(f"PixelGrid: comm={shown(comm)} must be an mpi4py communicator; pass "
                             f"e.g. mpi4py.MPI.COMM_WORLD.")
        if comm.size > (nx - 1) * (ny - 1):
            raise InputError(f"{comm.size} ranks for {(nx - 1) * (ny - 1)} cells: use fewer "
                             f"ranks in the spatial communicator (an Ensemble splits the data).")
        self.nx, self.ny = int(nx), int(ny)
        self.comm = comm
        self.mesh = fd.UnitSquareMesh(nx - 1, ny - 1, quadrilateral=True, comm=comm)
        self.V = fd.FunctionSpace(self.mesh, "Q", 1)
        x = fd.Function(fd.VectorFunctionSpace(self.mesh, "Q", 1))
        x.interpolate(fd.SpatialCoordinate(self.mesh))
        xy = x.dat.data_ro
        self.ix = np.rint(xy[:, 0] * (nx - 1)).astype(np.intp)
        self.iy = np.rint(xy[:, 1] * (ny - 1)).astype(np.intp)
        self.n_owned = len(self.ix)
        self.cell_size = (1.0 / (nx - 1), 1.0 / (ny - 1))

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)``, the shape of an image on this grid."""
        return (self.ny, self.nx)

    def to_field(self, images: np.ndarray) -> np.ndarray:
        """The owned nodal values of images ``(n, ny, nx)`` (row ``iy``, column ``ix``).

        Returns an array ``(n_owned, n)``: one column per image.
        """
        images = np.asarray(images)
        if images.dtype.kind not in "biuf":
            raise InputError(f"images have dtype {images.dtype}; give real pixel values "
                             f"(bool, integer or float).")
        if images.ndim != 3 or images.shape[1:] != self.shape:
            raise InputError(f"expected images of shape (n, {self.ny}, {self.nx}), "
                             f"got {images.shape}.")
        return np.ascontiguousarray(images[:, self.iy, self.ix].T)

    def to_image(self, field: np.ndarray) -> np.ndarray:
        """Images ``(n, ny, nx, ...)`` from fields ``(n_owned, n, ...)``, summed over ``comm``.

        Collective; every rank receives the whole images.
        """
        field = np.asarray(field)
        out = np.zeros((field.shape[1], self.ny, self.nx) + field.shape[2:])
        out[:, self.iy, self.ix] = np.moveaxis(field, 0, 1)
        self.comm.Allreduce(MPI.IN_PLACE, out, op=MPI.SUM)
        return out
