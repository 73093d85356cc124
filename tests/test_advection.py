"""The advection data set: the upwind finite-volume solve against the exact transport (its
order on smooth and discontinuous fronts, exactness at Courant number 1, the maximum
principle), the layout of its fields, its seeding and its argument checks."""

import numpy as np
import pytest
from mpi4py import MPI

import pdeopt
from pdeopt.data import advection_data, cfl_steps, courant_number, front_profile
from pdeopt.errors import InputError

W, T = (1.0, 0.5), 0.25


def rms_error(data):
    return float(np.sqrt(np.mean((data.upwind_images - data.exact_images) ** 2)))


def refinement(width, sizes=(9, 17, 33), courant=0.5):
    """The upwind errors on grids of ``sizes`` pixels at a fixed Courant number."""
    errors = []
    for nx in sizes:
        grid = pdeopt.PixelGrid(nx, comm=MPI.COMM_SELF)
        steps = int(np.ceil(cfl_steps(grid, W, T) / courant))
        errors.append(rms_error(advection_data(grid, 3, seed=1, width=width, velocity=W, time=T,
                                               steps=steps)))
    return np.array(errors)


def test_upwind_is_first_order_on_smooth_fronts_and_slower_on_a_discontinuity():
    """Halving the cells and the step halves the error of a smooth front (rate in [0.8, 1.2]);
    the error of the discontinuity falls, but at most at rate 0.75 (in the L2 norm the
    smeared jump gives about 1/4)."""
    smooth = refinement(0.3)
    rates = np.log2(smooth[:-1] / smooth[1:])
    assert np.all((rates > 0.8) & (rates < 1.2)), (smooth, rates)
    jump = refinement(0.0)
    jump_rates = np.log2(jump[:-1] / jump[1:])
    assert np.all(jump_rates > 0.05) and np.all(jump_rates < 0.75), (jump, jump_rates)
    assert np.all(jump > smooth)


def test_upwind_at_courant_number_one_shifts_by_one_cell():
    """With :math:`w = (1, 0)` and :math:`\\Delta t = h_x` the upwind scheme copies every cell
    into its downwind neighbour: exact on the cells that the inflow data cannot reach."""
    grid = pdeopt.PixelGrid(16, 10, comm=MPI.COMM_SELF)
    k = 4
    data = advection_data(grid, 5, seed=3, width=0.1, velocity=(1.0, 0.0),
                          time=k * grid.cell_size[0], steps=k)
    assert data.steps == k and abs(data.courant - 1.0) < 1e-12
    error = np.abs(data.upwind_images - data.exact_images)
    assert error[:, :, k + 1:].max() < 1e-12
    assert error[:, :, :k].max() > 1e-6  # the inflow column is not the upwind cell's value


def test_layout_shapes_and_maximum_principle():
    """Fields in the grid's layout, whole images on every rank, the exact targets equal to the
    transported profile, and the monotone scheme inside the initial range [-1, 1]."""
    grid = pdeopt.PixelGrid(11, 7, comm=MPI.COMM_WORLD)
    n = 6
    data = advection_data(grid, n, seed=0, width=0.02)
    assert data.x.shape == data.targets.shape == data.upwind.shape == (grid.n_owned, n, 1)
    for images in (data.initial_images, data.exact_images, data.upwind_images):
        assert images.shape == (n, 7, 11)
    assert np.array_equal(data.x[:, :, 0], grid.to_field(data.initial_images))
    assert np.array_equal(data.upwind[:, :, 0], grid.to_field(data.upwind_images))
    points = np.stack([grid.ix * grid.cell_size[0], grid.iy * grid.cell_size[1]], axis=1)
    expected = front_profile(points, data.normals, data.offsets, 0.02, (0.25, 0.125))
    assert np.allclose(data.targets[:, :, 0], expected, atol=1e-14)
    assert np.abs(data.upwind_images).max() <= 1.0 + 1e-12
    assert data.steps == cfl_steps(grid, (1.0, 0.5), 0.25) and data.courant <= 1.0
    assert len(data) == n and len(data[1:3]) == 2 and data[2].x.shape == (grid.n_owned, 1, 1)


def test_seeded_and_reproducible():
    grid = pdeopt.PixelGrid(8, comm=MPI.COMM_SELF)
    a, b = advection_data(grid, 4, seed=5), advection_data(grid, 4, seed=5)
    c = advection_data(grid, 4, seed=6)
    assert np.array_equal(a.upwind_images, b.upwind_images) and np.array_equal(a.x, b.x)
    assert not np.allclose(a.x, c.x)


def test_courant_number_and_fewest_steps_agree():
    grid = pdeopt.PixelGrid(21, comm=MPI.COMM_SELF)
    n = cfl_steps(grid, W, T)
    assert courant_number(grid, W, T, n) <= 1.0 < courant_number(grid, W, T, n - 1)
    assert n == 8  # 0.25 * (1 + 0.5) * 20 = 7.5


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, r"n=0.*at least one sample"),
    ({"seed": -1}, r"seed=-1.*non-negative integer"),
    ({"width": -0.1}, r"width=-0\.1.*0 is a discontinuity"),
    ({"width": float("nan")}, r"width=nan.*finite"),
    ({"velocity": (1.0,)}, r"velocity=\(1\.0,\).*two finite real numbers"),
    ({"velocity": (1.0, float("inf"))}, r"velocity=.*two finite real numbers"),
    ({"velocity": "fast"}, r"velocity='fast'.*\(w_x, w_y\)"),
    ({"time": 0.0}, r"time=0\.0.*positive"),
    ({"steps": 0}, r"steps=0.*fewest stable"),
    ({"steps": 2.5}, r"steps=2\.5.*an integer"),
    ({"steps": 3}, r"steps=3 gives the Courant number 1\.25 > 1.*steps >= 4"),
])
def test_bad_arguments_are_typed_errors_with_the_remedy(kwargs, match):
    grid = pdeopt.PixelGrid(11, comm=MPI.COMM_SELF)  # T (|w_x| + |w_y|) / h = 3.75
    args = {"n": 2, "velocity": (1.0, 0.5), "time": 0.25, **kwargs}
    with pytest.raises(InputError, match=match):
        advection_data(grid, **args)


def test_a_grid_that_is_not_a_pixel_grid_is_refused():
    with pytest.raises(InputError, match="must be a PixelGrid"):
        advection_data(np.zeros((4, 4)), 2)


def test_data_do_not_depend_on_the_partition():
    """The upwind solve on the mesh partitioned over COMM_WORLD gives the serial images (run
    under ``mpiexec -n 2`` to partition)."""
    shared = advection_data(pdeopt.PixelGrid(13, comm=MPI.COMM_WORLD), 3, seed=4, width=0.05)
    alone = advection_data(pdeopt.PixelGrid(13, comm=MPI.COMM_SELF), 3, seed=4, width=0.05)
    assert np.allclose(shared.upwind_images, alone.upwind_images, rtol=0, atol=1e-13)
    assert np.array_equal(shared.exact_images, alone.exact_images)
