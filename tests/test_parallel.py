"""The mesh partitioned over 2 ranks gives the serial value, gradient and Hessian action."""

import numpy as np
import pytest
from mpi4py import MPI

from conftest import make_problem


@pytest.mark.parallel(nprocs=2)
@pytest.mark.parametrize("scheme", ["parabolic", "leapfrog", "imex"])
def test_spatial_partition_matches_serial(scheme):
    comm = MPI.COMM_WORLD
    assert comm.size == 2
    _, model, rf, theta = make_problem(scheme, comm=comm)
    assert model.network.ops.n_owned < 64  # the mesh really is split
    _, _, rf1, theta1 = make_problem(scheme, comm=MPI.COMM_SELF)
    assert np.array_equal(theta, theta1)
    d = np.random.default_rng(2).standard_normal(rf.size)
    J, J1 = rf.objective(theta), rf1.objective(theta)
    assert abs(J - J1) <= 1e-10 * abs(J1)
    g, g1 = rf.gradient(theta), rf1.gradient(theta)
    assert np.linalg.norm(g - g1) <= 1e-10 * np.linalg.norm(g1)
    H, H1 = rf.hessian_action(theta, d), rf1.hessian_action(theta, d)
    assert np.linalg.norm(H - H1) <= 1e-10 * np.linalg.norm(H1)


@pytest.mark.parallel(nprocs=2)
def test_tao_on_two_ranks_follows_serial():
    from pdeopt import TAOSolver
    _, _, rf, _ = make_problem("parabolic", comm=MPI.COMM_WORLD)
    _, _, rf1, _ = make_problem("parabolic", comm=MPI.COMM_SELF)
    params = {"tao_type": "lmvm", "tao_max_it": 5}
    r = TAOSolver(rf, params, monitor=False).solve()
    r1 = TAOSolver(rf1, params, options_prefix="serial_", monitor=False).solve()
    assert r.iterations == r1.iterations == 5
    f, f1 = [h["objective"] for h in r.history], [h["objective"] for h in r1.history]
    # Reductions in another order differ at round-off; five quasi-Newton steps amplify that.
    assert np.allclose(f, f1, rtol=1e-8, atol=0)
    assert np.linalg.norm(r.theta - r1.theta) <= 1e-6 * np.linalg.norm(r1.theta)
