"""Checkpoints: generations, damage, another run's checkpoint, unwritable paths; on one and
two ranks every failure is a CheckpointError on every rank."""

import json
from pathlib import Path

import pytest
from mpi4py import MPI

import pdeopt
from pdeopt import (CheckpointError, GaussNewtonHessian, LMVMPC,
                    TrustRegionNewtonCG)
from problems import digits_batch, make_problem, relative_error


def solver(Jhat, directory, max_it=3, **kwargs):
    return TrustRegionNewtonCG(Jhat, parameters={"max_it": max_it}, checkpoint=directory,
                               **kwargs)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A 3-iteration checkpoint of the network problem, and the problem."""
    directory = tmp_path_factory.mktemp("ckpt")
    _, _, Jhat, theta = make_problem("parabolic")
    solver(Jhat, directory).solve(theta)
    return directory, theta


def copy_of(written, tmp_path):
    import shutil
    return shutil.copytree(written[0], tmp_path / "ckpt")


def test_stopping_tests_may_change_on_resume(written, tmp_path):
    _, _, Jhat, _ = make_problem("parabolic")
    result = TrustRegionNewtonCG(Jhat, parameters={"max_it": 5, "gatol": 1e-12,
                                                   "max_seconds": 1e6},
                                 checkpoint=copy_of(written, tmp_path)).solve(resume=True)
    assert result.iterations == 5


ANOTHER_RUN = {
    "other data": (dict(digits_seed=1), {}, "data.inputs"),
    "other scheme": (dict(scheme="forward_euler"), {}, "scheme"),
    "other regulariser": (dict(alpha=0.1), {}, "regularizer.alpha"),
    "a preconditioner": ({}, dict(preconditioner=LMVMPC()), "preconditioner"),
    "another Hessian model": ({}, dict(hessian=GaussNewtonHessian()), "hessian.name"),
    "another subproblem KSP": ({}, dict(solver_parameters={"ksp_type": "nash"}),
                               "subproblem.name"),
    "another radius rule": ({}, dict(parameters={"max_it": 5, "shrink": 0.5}),
                            "parameters.shrink"),
}


@pytest.mark.parametrize("case", ANOTHER_RUN)
def test_a_checkpoint_of_another_run_is_refused(written, tmp_path, case):
    problem, options, differs = ANOTHER_RUN[case]
    digits_seed = problem.pop("digits_seed", None)
    grid, model, Jhat, theta = make_problem(**{"scheme": "parabolic", **problem})
    if digits_seed is not None:  # the same model and controls, other digits
        x, labels = digits_batch(grid, seed=digits_seed)
        Jhat = pdeopt.ReducedFunctional(model, x, labels, Jhat.regularizer, theta=theta)
    options = {"parameters": {"max_it": 5}, **options}
    with pytest.raises(CheckpointError, match=differs.replace(".", r"\.")) as info:
        TrustRegionNewtonCG(Jhat, checkpoint=copy_of(written, tmp_path),
                            **options).solve(resume=True)
    assert "belongs to another run" in str(info.value)


def damage_truncate(newest):
    h5 = newest.with_suffix(".h5")
    h5.write_bytes(h5.read_bytes()[:100])


def damage_empty(newest):
    newest.write_text("")


def damage_garble(newest):
    newest.write_text(newest.read_text()[:-40] + "#garbled")


def damage_half_missing(newest):
    newest.with_suffix(".h5").unlink()


def damage_wrong_keys(newest):
    newest.write_text(json.dumps({"iteration": 3}))


DAMAGE = [damage_truncate, damage_empty, damage_garble, damage_half_missing, damage_wrong_keys]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__[7:])
def test_a_damaged_newest_generation_names_the_file_and_the_fallback(written, tmp_path,
                                                                     damage):
    directory = copy_of(written, tmp_path)
    newest = directory / "state-000003.json"
    damage(newest)
    _, _, Jhat, theta = make_problem("parabolic")
    with pytest.raises(CheckpointError, match="state-00000[3]") as info:
        solver(Jhat, directory, max_it=5).solve(resume=True)
    assert "state-000002.json (iteration 2) is intact" in str(info.value)
    # the documented fall-back: delete the damaged generation, resume from the previous one
    newest.unlink()
    newest.with_suffix(".h5").unlink(missing_ok=True)
    resumed = solver(Jhat, directory, max_it=5).solve(resume=True)
    reference = TrustRegionNewtonCG(Jhat, parameters={"max_it": 5}).solve(theta)
    assert resumed.iterations == 5
    assert relative_error(resumed.theta, reference.theta) <= 1e-10


def test_both_generations_damaged_says_start_again(written, tmp_path):
    directory = copy_of(written, tmp_path)
    for path in directory.glob("*.json"):
        damage_garble(path)
    _, _, Jhat, _ = make_problem("parabolic")
    with pytest.raises(CheckpointError, match="no earlier generation"):
        solver(Jhat, directory).solve(resume=True)


def test_an_unwritable_checkpoint_path_fails_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    _, _, Jhat, _ = make_problem("parabolic")
    before = Jhat.counts
    with pytest.raises(CheckpointError, match="cannot write checkpoints to .*a-file"):
        solver(Jhat, blocker / "ckpt")
    assert Jhat.counts == before


def test_a_failed_save_keeps_the_generations_and_raises(tmp_path):
    _, _, Jhat, theta = make_problem("parabolic")
    directory = tmp_path / "ckpt"
    s = solver(Jhat, directory, max_it=2)
    s.solve(theta)
    (directory / "state-000003.h5.tmp").mkdir()  # the next save cannot write its arrays
    with pytest.raises(CheckpointError, match="cannot write the checkpoint of iteration 3"):
        solver(Jhat, directory, max_it=4).solve(resume=True)
    assert sorted(p.name for p in directory.glob("*.json")) == ["state-000001.json",
                                                                "state-000002.json"]


@pytest.mark.parallel(nprocs=2)
@pytest.mark.parametrize("damage", [damage_garble, damage_truncate], ids=["garbled", "truncated"])
def test_a_damaged_checkpoint_fails_on_both_ranks(tmp_path_factory, damage):
    comm = MPI.COMM_WORLD
    directory = comm.bcast(str(tmp_path_factory.mktemp("ckpt")) if comm.rank == 0 else None)
    _, _, Jhat, theta = make_problem("parabolic", comm=comm)
    solver(Jhat, directory).solve(theta)
    if comm.rank == 0:
        damage(Path(directory) / "state-000003.json")
    comm.Barrier()
    with pytest.raises(CheckpointError, match="damaged"):
        solver(Jhat, directory, max_it=5).solve(resume=True)
    comm.Barrier()  # both ranks got here: no rank waits for the other


@pytest.mark.parallel(nprocs=2)
def test_an_unwritable_path_fails_on_both_ranks(tmp_path_factory):
    comm = MPI.COMM_WORLD
    base = comm.bcast(str(tmp_path_factory.mktemp("blocked")) if comm.rank == 0 else None)
    blocker = Path(base) / "a-file"
    if comm.rank == 0:
        blocker.write_text("not a directory")
    comm.Barrier()
    _, _, Jhat, _ = make_problem("parabolic", comm=comm)
    with pytest.raises(CheckpointError, match="cannot write"):
        solver(Jhat, blocker / "ckpt")
    comm.Barrier()


def test_fingerprints_agree_to_round_off_only():
    from pdeopt.solvers.checkpoint import fingerprint_differences
    a = {"data": {"sum": 1.0, "hash": "ab"}, "n": 3}
    assert fingerprint_differences(a, {"data": {"sum": 1.0 + 1e-14, "hash": "ab"}, "n": 3}) == []
    assert fingerprint_differences(a, {"data": {"sum": 1.001, "hash": "ab"}, "n": 3}) == [
        "data.sum: checkpoint 1.0, this run 1.001"]
    assert fingerprint_differences(a, {"data": {"sum": 1.0, "hash": "ac"}, "n": 3}) == [
        "data.hash: checkpoint 'ab', this run 'ac'"]
