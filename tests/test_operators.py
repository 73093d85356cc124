"""The assembled operators are exactly the stencils they claim to be."""

import numpy as np
import pytest
import firedrake as fd
from mpi4py import MPI

import pdeopt
from pdeopt.model.torch_twin import _difference_matrices


def _dense_in_image_order(mat, grid):
    """A serial PETSc matrix as a dense array indexed by pixel iy * nx + ix."""
    A = np.zeros(mat.getSize())
    ai, aj, av = mat.getValuesCSR()
    for i in range(len(ai) - 1):
        A[i, aj[ai[i]:ai[i + 1]]] = av[ai[i]:ai[i + 1]]
    order = grid.iy * grid.nx + grid.ix
    P = np.zeros_like(A)
    P[np.ix_(order, order)] = A
    return P


def test_lumped_mass_is_diagonal_trapezoidal():
    grid = pdeopt.PixelGrid(6, 5, comm=MPI.COMM_SELF)
    u, v = fd.TrialFunction(grid.V), fd.TestFunction(grid.V)
    M = _dense_in_image_order(fd.assemble(u * v * fd.dx(scheme="KMV", degree=1)).petscmat, grid)
    assert np.count_nonzero(M - np.diag(np.diag(M))) == 0
    hx, hy = grid.cell_size
    wx, wy = np.full(grid.nx, hx), np.full(grid.ny, hy)
    wx[[0, -1]] /= 2
    wy[[0, -1]] /= 2
    assert np.allclose(np.diag(M), np.outer(wy, wx).ravel(), rtol=1e-14)


def test_grid_operators_are_the_stencil_products():
    grid = pdeopt.PixelGrid(7, 6, comm=MPI.COMM_SELF)
    ops = pdeopt.assemble_operators(grid)
    assert ops.names == tuple(pdeopt.GRID_BASIS)
    Dx, Dy = _difference_matrices(grid.nx), _difference_matrices(grid.ny)
    for name, mat in zip(ops.names, ops.mats):
        a, b = pdeopt.GRID_BASIS[name]
        expected = np.kron(Dy[b].numpy(), Dx[a].numpy())
        assert np.max(np.abs(_dense_in_image_order(mat, grid) - expected)) < 1e-12, name


def test_shifts_are_unit_stencils_recombined_from_the_differences():
    grid = pdeopt.PixelGrid(7, 6, comm=MPI.COMM_SELF)
    differences = pdeopt.assemble_operators(grid)
    shifts = pdeopt.assemble_operators(grid, basis=tuple(pdeopt.GRID_SHIFTS))
    D = {n: _dense_in_image_order(m, grid) for n, m in zip(differences.names, differences.mats)}
    T = pdeopt.model.operators.SHIFTS_FROM_DIFFERENCES
    for name, mat in zip(shifts.names, shifts.mats):
        a, b = pdeopt.GRID_SHIFTS[name]
        E = _dense_in_image_order(mat, grid)
        expected = sum(T[a + 1, i] * T[b + 1, j] * D[n]
                       for n, (i, j) in pdeopt.GRID_BASIS.items())
        assert np.max(np.abs(E - expected)) < 1e-12, name
        for i in (iy * grid.nx + ix for iy in range(1, grid.ny - 1)
                  for ix in range(1, grid.nx - 1)):  # interior pixel i reads pixel i + (a, b)
            assert np.flatnonzero(np.abs(E[i]) > 1e-13).tolist() == [i + b * grid.nx + a], name
            assert E[i, i + b * grid.nx + a] == pytest.approx(1.0, abs=1e-13)


def test_basis_spans_every_3x3_stencil():
    grid = pdeopt.PixelGrid(7, comm=MPI.COMM_SELF)
    ops = pdeopt.assemble_operators(grid)
    centre = np.flatnonzero((grid.ix == 3) & (grid.iy == 3))[0]
    rows = []
    for mat in ops.mats:
        row = np.zeros((3, 3))
        cols, vals = mat.getRow(centre)
        for c, val in zip(cols[vals != 0], vals[vals != 0]):
            row[grid.iy[c] - 2, grid.ix[c] - 2] = val
        rows.append(row.ravel())
    assert np.linalg.matrix_rank(np.array(rows)) == 9


def test_general_mesh_has_first_order_basis_only():
    mesh = fd.UnitSquareMesh(6, 6, comm=MPI.COMM_SELF)
    V = fd.FunctionSpace(mesh, "CG", 1)
    ops = pdeopt.assemble_operators(V)
    assert ops.names == pdeopt.MESH_BASIS
    x = fd.Function(V).interpolate(fd.SpatialCoordinate(mesh)[0]).dat.data_ro
    dx = ops.mats[1].createVecLeft()
    ops.mats[1].mult(_vec(ops.mats[1], x), dx)
    # The lumped derivative of x is exact everywhere: M^{-1} (int v dx) = 1, times the cell size.
    assert np.allclose(dx.getArray(), np.sqrt(1.0 / 72), rtol=1e-12)
    with pytest.raises(pdeopt.InputError, match="need a PixelGrid"):
        pdeopt.assemble_operators(V, basis=("I", "dxy"))


def _vec(mat, values):
    v = mat.createVecRight()
    v.setArray(values)
    return v


def _fused_cases(comm, n=9, channels=((8, 8), (3, 12), (12, 5)), batches=(1, 5, 17)):
    """(stack, X, Phi, W) on an n×n grid: both stacks of both bases, channel pairs whose rows
    take every SIMD width, batches that fill no tile, part of one and more than one."""
    grid = pdeopt.PixelGrid(n, comm=comm)
    rng = np.random.default_rng(comm.rank)
    for basis in (tuple(pdeopt.GRID_BASIS), tuple(pdeopt.GRID_SHIFTS)):
        ops = pdeopt.assemble_operators(grid, basis=basis)
        for stack in (ops.forward, ops.transpose):
            for (c_in, c_out), B in zip(channels, batches):
                X = rng.standard_normal((ops.n_owned, B, c_in))
                Phi = np.random.default_rng(7).standard_normal((ops.S, c_out, c_in))
                W = rng.standard_normal((ops.n_owned, B, c_out))
                yield stack, X, Phi, W


def check_fused_kernel_equals_spread_then_mix(comm):
    from pdeopt.model.stencil import contract, mix
    for stack, X, Phi, W in _fused_cases(comm):
        assert comm.size == 1 or stack.off.nnz  # on two ranks the ghost rows are read
        Y = stack.spread(X)
        z, G = stack.apply_contract(X, Phi, W)
        assert np.allclose(z, mix(Y, Phi), rtol=1e-13, atol=1e-13)
        assert np.allclose(comm.allreduce(G), comm.allreduce(contract(Y, W)), rtol=1e-12,
                           atol=1e-12)
        out = np.ones_like(z)
        stack.apply(X, Phi, out=out)
        assert np.allclose(out, 1.0 + z, rtol=1e-13, atol=1e-13)
        b = np.arange(z.shape[-1], dtype=float)
        assert np.allclose(stack.apply(X, Phi, bias=b), z + b, rtol=1e-13, atol=1e-13)
        stack.apply(X, Phi, out=out, bias=b)
        assert np.allclose(out, 1.0 + 2 * z + b, rtol=1e-13, atol=1e-13)
        assert np.allclose(stack.contract(X, W), G, rtol=1e-13, atol=1e-13)


def test_fused_kernel_equals_spread_then_mix():
    check_fused_kernel_equals_spread_then_mix(MPI.COMM_WORLD)


def test_fused_kernel_rejects_a_block_of_the_wrong_shape():
    ops = pdeopt.assemble_operators(pdeopt.PixelGrid(5))
    with pytest.raises(ValueError, match=r"expected a block \(n=25"):
        ops.forward.apply(np.zeros((24, 2, 3)), np.zeros((9, 3, 3)))
    with pytest.raises(ValueError, match=r"Phi of shape \(9, 3, 3\)"):
        ops.forward.apply(np.zeros((25, 2, 3)), np.zeros((9, 3, 4)))
    with pytest.raises(ValueError, match=r"W of shape \(25, 2, 3\)"):
        ops.forward.contract(np.zeros((25, 2, 3)), np.zeros((25, 1, 3)))
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.forward.apply(np.zeros((25, 2, 3)), np.zeros((9, 3, 3)),
                          out=np.zeros((25, 3, 2)).transpose(0, 2, 1))
