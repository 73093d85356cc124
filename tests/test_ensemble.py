"""Data parallelism over a Firedrake Ensemble: the serial answers from two members."""

import firedrake as fd
import numpy as np
import pytest
from mpi4py import MPI

import pdeopt
from conftest import digits_batch, make_model

N_SAMPLES = 5


def _problems(scheme="parabolic"):
    """The same problem on 2 ensemble members (one rank each) and in serial on each rank."""
    ensemble = fd.Ensemble(MPI.COMM_WORLD, 1)
    grid, model = make_model(scheme, comm=ensemble.comm)
    x, labels = digits_batch(grid, n=N_SAMPLES)
    mine = pdeopt.member_slice(ensemble, N_SAMPLES)
    theta = model.initial_controls(seed=1)
    theta[model.network.layout.size:] = 0.1 * np.random.default_rng(1).standard_normal(
        model.readout.layout.size)
    reg = pdeopt.Regularizer(model.layout, alpha=1e-2, beta=1e-2, step=model.network.step)
    ens = pdeopt.EnsembleReducedFunctional(model, x[:, mine], labels[mine], reg, ensemble,
                                           theta=theta)
    grid1, model1 = make_model(scheme, comm=MPI.COMM_SELF)
    x1, labels1 = digits_batch(grid1, n=N_SAMPLES)
    reg1 = pdeopt.Regularizer(model1.layout, alpha=1e-2, beta=1e-2, step=model1.network.step)
    serial = pdeopt.ReducedFunctional(model1, x1, labels1, reg1, theta=theta)
    return ens, serial, theta


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parallel(nprocs=2)
@pytest.mark.parametrize("scheme", ["parabolic", "imex"])
def test_two_members_match_serial(scheme):
    ens, serial, theta = _problems(scheme)
    d = np.random.default_rng(2).standard_normal(ens.size)
    assert abs(ens.objective(theta) - serial.objective(theta)) <= 1e-10 * abs(serial.objective(theta))
    assert _rel(ens.gradient(theta), serial.gradient(theta)) <= 1e-10
    assert _rel(ens.hessian_action(theta, d), serial.hessian_action(theta, d)) <= 1e-10
    assert _rel(ens.gauss_newton_action(theta, d), serial.gauss_newton_action(theta, d)) <= 1e-10
    assert ens.comm.size == 2 and ens.member.x.shape[1] in (2, 3)


@pytest.mark.parallel(nprocs=2)
def test_trust_region_over_the_ensemble_follows_serial():
    ens, serial, theta = _problems()
    params = {"max_it": 5, "forcing": "fixed"}
    ksp = {"ksp_max_it": 4, "ksp_rtol": 1e-30}
    r = pdeopt.TrustRegionNewtonCG(ens, params, solver_parameters=ksp, monitor=False).solve(theta)
    r1 = pdeopt.TrustRegionNewtonCG(serial, params, solver_parameters=ksp, monitor=False,
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
        pdeopt.TrustRegionNewtonCG(serial, dict(params, max_it=3), solver_parameters=ksp,
                                   options_prefix="w_", monitor=False,
                                   checkpoint=path).solve(theta)
    comm.Barrier()
    resumed = pdeopt.TrustRegionNewtonCG(ens, dict(params, max_it=5), solver_parameters=ksp,
                                         monitor=False, checkpoint=path).solve(resume=True)
    reference = pdeopt.TrustRegionNewtonCG(serial, dict(params, max_it=5), solver_parameters=ksp,
                                           options_prefix="u_", monitor=False).solve(theta)
    assert resumed.iterations == 5
    assert np.linalg.norm(resumed.theta - reference.theta) <= 1e-8 * np.linalg.norm(reference.theta)


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
    reg1 = pdeopt.Regularizer(model1.layout, alpha=1e-2, beta=1e-2, step=model1.network.step)
    serial = pdeopt.ReducedFunctional(model1, x1[:, S], labels1[S], reg1, theta=theta)
    d = np.random.default_rng(2).standard_normal(ens.size)
    assert abs(sample.objective(theta) - serial.objective(theta)) <= 1e-10 * serial.objective(theta)
    assert _rel(sample.gauss_newton_action(theta, d), serial.gauss_newton_action(theta, d)) <= 1e-10
