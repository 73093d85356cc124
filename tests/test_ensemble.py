"""Data parallelism over a Firedrake Ensemble: the serial answers from two members."""

import firedrake as fd
import numpy as np
import pytest
from mpi4py import MPI

import pdeopt
from problems import digits_batch, make_model, random_controls, relative_error

N_SAMPLES = 5


def _problems(scheme="parabolic"):
    """The same problem on 2 ensemble members (one rank each) and in serial on each rank."""
    ensemble = fd.Ensemble(MPI.COMM_WORLD, 1)
    grid, model = make_model(scheme, comm=ensemble.comm)
    x, labels = digits_batch(grid, n=N_SAMPLES)
    mine = pdeopt.member_slice(ensemble, N_SAMPLES)
    theta = random_controls(model, seed=1)
    reg = pdeopt.Regularizer(model, alpha=1e-2, beta=1e-2)
    ens = pdeopt.EnsembleReducedFunctional(model, x[:, mine], labels[mine], reg, ensemble,
                                           theta=theta)
    grid1, model1 = make_model(scheme, comm=MPI.COMM_SELF)
    x1, labels1 = digits_batch(grid1, n=N_SAMPLES)
    reg1 = pdeopt.Regularizer(model1, alpha=1e-2, beta=1e-2)
    serial = pdeopt.ReducedFunctional(model1, x1, labels1, reg1, theta=theta)
    return ens, serial, theta


@pytest.mark.parallel(nprocs=2)
@pytest.mark.parametrize("scheme", ["parabolic", "imex"])
def test_two_members_match_serial(scheme):
    ens, serial, theta = _problems(scheme)
    d = np.random.default_rng(2).standard_normal(ens.size)
    J = serial.objective(theta)
    assert abs(ens.objective(theta) - J) <= 1e-10 * abs(J)
    assert relative_error(ens.gradient(theta), serial.gradient(theta)) <= 1e-10
    assert relative_error(ens.hessian_action(theta, d), serial.hessian_action(theta, d)) <= 1e-10
    assert relative_error(ens.gauss_newton_action(theta, d),
                          serial.gauss_newton_action(theta, d)) <= 1e-10
    assert ens.comm.size == 2 and ens.member.x.shape[1] in (2, 3)


@pytest.mark.parallel(nprocs=2)
def test_trust_region_over_the_ensemble_follows_serial():
    ens, serial, theta = _problems()
    params = {"max_it": 5, "forcing": "fixed"}
    ksp = {"ksp_max_it": 4, "ksp_rtol": 1e-30}
    r = pdeopt.TrustRegionNewtonCG(ens, parameters=params, solver_parameters=ksp).solve(theta)
    r1 = pdeopt.TrustRegionNewtonCG(serial, parameters=params, solver_parameters=ksp,
                                    options_prefix="serial_").solve(theta)
    assert r.iterations == r1.iterations == 5
    assert np.allclose([h["objective"] for h in r.history],
                       [h["objective"] for h in r1.history], rtol=1e-8, atol=0)
    assert np.linalg.norm(r.theta - r1.theta) <= 1e-8 * np.linalg.norm(r1.theta)


@pytest.mark.parallel(nprocs=2)
def test_layouts_that_cannot_work_are_reported():
    ensemble = fd.Ensemble(MPI.COMM_WORLD, 1)
    with pytest.raises(pdeopt.InputError, match="ensemble members"):
        pdeopt.member_slice(ensemble, 1)
    grid, model = make_model(comm=MPI.COMM_WORLD)  # spatial over both ranks: not a member's
    x, labels = digits_batch(grid, n=2)
    with pytest.raises(pdeopt.InputError, match="spatial communicator"):
        pdeopt.EnsembleReducedFunctional(model, x, labels, None, ensemble)


@pytest.mark.parallel(nprocs=2)
def test_a_serial_checkpoint_resumes_on_the_ensemble(tmp_path_factory):
    """Written by one rank alone, resumed by two members: the uninterrupted serial steps."""
    ens, serial, theta = _problems()
    comm = MPI.COMM_WORLD
    path = comm.bcast(str(tmp_path_factory.mktemp("ckpt1")) if comm.rank == 0 else None)
    params = {"forcing": "fixed"}
    ksp = {"ksp_max_it": 4, "ksp_rtol": 1e-30}
    if comm.rank == 0:
        pdeopt.TrustRegionNewtonCG(serial, parameters=dict(params, max_it=3),
                                   solver_parameters=ksp, options_prefix="w_",
                                   checkpoint=path).solve(theta)
    comm.Barrier()
    resumed = pdeopt.TrustRegionNewtonCG(ens, parameters=dict(params, max_it=5),
                                         solver_parameters=ksp,
                                         checkpoint=path).solve(resume=True)
    reference = pdeopt.TrustRegionNewtonCG(serial, parameters=dict(params, max_it=5),
                                           solver_parameters=ksp,
                                           options_prefix="u_").solve(theta)
    assert resumed.iterations == 5
    assert relative_error(resumed.theta, reference.theta) <= 1e-8


@pytest.mark.parallel(nprocs=2)
def test_a_subsample_of_the_ensemble_is_the_serial_functional_of_its_samples():
    ens, _, theta = _problems()
    sample = ens.subsample(0.5, seed=7)
    ensemble = ens.ensemble
    start = pdeopt.member_slice(ensemble, N_SAMPLES).start
    S = np.concatenate(ensemble.ensemble_comm.allgather(start + sample.member.samples))
    assert len(S) == 3 and sample.fraction == pytest.approx(3 / 5)  # ceil(3/2) + ceil(2/2)
    grid1, model1 = make_model(comm=MPI.COMM_SELF)
    x1, labels1 = digits_batch(grid1, n=N_SAMPLES)
    reg1 = pdeopt.Regularizer(model1, alpha=1e-2, beta=1e-2)
    serial = pdeopt.ReducedFunctional(model1, x1[:, S], labels1[S], reg1, theta=theta)
    d = np.random.default_rng(2).standard_normal(ens.size)
    J = serial.objective(theta)
    assert abs(sample.objective(theta) - J) <= 1e-10 * J
    assert relative_error(sample.gauss_newton_action(theta, d),
                          serial.gauss_newton_action(theta, d)) <= 1e-10
