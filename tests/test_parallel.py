"""Two ranks give the serial value, gradient, Hessian action and solver histories."""

import shutil

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


@pytest.mark.parallel(nprocs=2)
def test_trust_region_on_two_ranks_follows_serial(tmp_path_factory):
    """Five TR-Newton-CG steps with the regulariser PC (a MUMPS factorisation on 2 ranks),
    checkpointed on 2 ranks and resumed on each rank alone."""
    from pdeopt import TrustRegionNewtonCG
    from pdeopt.solvers.preconditioners import RegularizerPC
    _, _, rf, theta = make_problem("parabolic", comm=MPI.COMM_WORLD)
    _, _, rf1, _ = make_problem("parabolic", comm=MPI.COMM_SELF)
    # a fixed number of CG iterations per step: the histories are comparable step by step
    params = {"max_it": 5, "forcing": "fixed"}
    ksp = {"ksp_max_it": 4, "ksp_rtol": 1e-30}
    path = MPI.COMM_WORLD.bcast(str(tmp_path_factory.mktemp("ckpt")) if MPI.COMM_WORLD.rank == 0
                                else None)
    r = TrustRegionNewtonCG(rf, params, RegularizerPC(rf.regularizer), ksp, monitor=False,
                            checkpoint=path).solve(theta)
    r1 = TrustRegionNewtonCG(rf1, params, RegularizerPC(rf1.regularizer, options_prefix="s_pc_"),
                             ksp, options_prefix="serial_", monitor=False).solve(theta)
    assert r.iterations == r1.iterations == 5
    f, f1 = [h["objective"] for h in r.history], [h["objective"] for h in r1.history]
    assert np.allclose(f, f1, rtol=1e-8, atol=0)
    assert np.linalg.norm(r.theta - r1.theta) <= 1e-8 * np.linalg.norm(r1.theta)
    # the 2-rank checkpoint resumes in serial and gives the 2-rank run's next steps
    more = dict(params, max_it=7)
    mine = shutil.copytree(path, f"{path}-rank{MPI.COMM_WORLD.rank}")  # each rank resumes alone
    resumed = TrustRegionNewtonCG(rf1, more, RegularizerPC(rf1.regularizer, options_prefix="r_pc_"),
                                  ksp, options_prefix="r_tr_", monitor=False,
                                  checkpoint=mine).solve(resume=True)
    reference = TrustRegionNewtonCG(rf1, more, RegularizerPC(rf1.regularizer,
                                                             options_prefix="u_pc_"),
                                    ksp, options_prefix="u_tr_", monitor=False).solve(theta)
    assert resumed.iterations == 7
    assert np.linalg.norm(resumed.theta - reference.theta) <= 1e-8 * np.linalg.norm(reference.theta)
