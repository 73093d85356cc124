"""Observed orders of the schemes as the layers are refined at fixed final time, with smooth
controls (each scheme's order, to ±0.15) and with controls drawn independently per layer (no
limit at the scheme's order)."""

import json

import numpy as np
import pytest
from mpi4py import MPI

import pdeopt
from pdeopt.analysis import consistency_study, independent_path, smooth_path

C, B, T = 2, 2, 1.0


def factory(scheme, comm=MPI.COMM_SELF, grid=None, cls=None):
    """``N -> Network`` of ``scheme`` on a 5x5 grid with step T/N."""
    grid = grid or pdeopt.PixelGrid(5, comm=comm)
    ops = pdeopt.assemble_operators(grid, basis=tuple(pdeopt.GRID_SHIFTS))
    cls = cls or pdeopt.SCHEMES[scheme]

    def network_for(N):
        return pdeopt.Network(cls(ops, pdeopt.Tanh(), step=T / N), channels=C, depth=N)
    return network_for, ops


def field_input(ops, seed=1):
    return np.random.default_rng(seed).standard_normal((ops.n_owned, B, 1))


@pytest.mark.parametrize("scheme", ["forward_euler", "parabolic", "imex", "leapfrog", "verlet"])
def test_smooth_controls_converge_at_the_schemes_order(scheme):
    r"""Controls sampled from a smooth :math:`\theta(t)`, N = 4, ..., 256 against N = 1024:
    the observed (Richardson) order is the scheme's, 1 or 2, to ±0.15, and the errors against
    the reference fall too."""
    network_for, ops = factory(scheme)
    path = smooth_path(network_for(4), np.random.default_rng(0), final_time=T, modes=2,
                       scale=0.5)
    study = consistency_study(network_for, path, field_input(ops))
    assert study.expected == (2 if scheme in ("leapfrog", "verlet") else 1)
    assert abs(study.order - study.expected) <= 0.15, study.table()
    assert study.consistent and "converges" in study.verdict()
    assert all(a > b for a, b in zip(study.errors, study.errors[1:])), study.table()
    assert study.errors[-1] < 1e-2


def test_verlet_needs_its_staggered_control_times():
    r"""Sampling both Verlet sets at :math:`t_k` (offsets 0, 0) instead of
    :math:`t_{k+1/2}, t_{k+1}` loses the second order: the staggering is part of the scheme."""
    unstaggered = type("UnstaggeredVerlet", (pdeopt.VerletScheme,), {"control_offsets": (0.0, 0.0)})
    network_for, ops = factory("verlet", cls=unstaggered)
    path = smooth_path(network_for(4), np.random.default_rng(0), final_time=T, modes=2,
                       scale=0.5)
    study = consistency_study(network_for, path, field_input(ops))
    assert abs(study.order - 1.0) <= 0.15, study.table()
    assert not study.consistent


@pytest.mark.parametrize("scheme", ["parabolic", "leapfrog"])
def test_independent_controls_have_no_limit_at_the_schemes_order(scheme):
    """Layer controls drawn independently per layer (a path piecewise constant on the
    reference's 1024 layers): the networks do not converge at the scheme's order, and the
    study says so."""
    network_for, ops = factory(scheme)
    path = independent_path(network_for(4), np.random.default_rng(0), 1024, final_time=T)
    study = consistency_study(network_for, path, field_input(ops))
    assert study.order < study.expected - 0.3, study.table()
    assert not study.consistent and "no limit" in study.verdict()


def test_table_and_json(capsys, tmp_path):
    network_for, ops = factory("parabolic")
    path = smooth_path(network_for(4), np.random.default_rng(0), final_time=T)
    study = consistency_study(network_for, path, field_input(ops), depths=(4, 8, 16),
                              reference=64)
    study.print(comm=MPI.COMM_SELF)
    out = capsys.readouterr().out
    assert "parabolic" in out and len(out.strip().splitlines()) == 2 + 3 + 1
    data = json.loads(pdeopt.write_json(tmp_path / "c.json", study.as_dict(),
                                        comm=MPI.COMM_SELF).read_text())
    assert data["depths"] == [4, 8, 16] and len(data["differences"]) == 2
    assert data["order"] == pytest.approx(study.order)
    assert len(study.pairwise) == 1


def test_bad_inputs_raise():
    network_for, ops = factory("parabolic")
    x = field_input(ops)
    path = smooth_path(network_for(4), np.random.default_rng(0), final_time=T)
    with pytest.raises(pdeopt.InputError, match="each twice the last"):
        consistency_study(network_for, path, x, depths=(4, 6, 12))
    with pytest.raises(pdeopt.InputError, match="reference"):
        consistency_study(network_for, path, x, depths=(4, 8), reference=8)
    with pytest.raises(pdeopt.InputError, match="has 3 layers"):
        consistency_study(lambda N: network_for(3), path, x, depths=(4, 8), reference=16)
    other = smooth_path(network_for(4), np.random.default_rng(0), final_time=2.0)
    with pytest.raises(pdeopt.InputError, match="final time"):
        consistency_study(network_for, other, x, depths=(4, 8), reference=16)
    with pytest.raises(pdeopt.InputError, match="network input must have shape"):
        consistency_study(network_for, path, x[:-1], depths=(4, 8), reference=16)
    leapfrog_for, _ = factory("leapfrog")
    with pytest.raises(pdeopt.InputError, match="shape"):
        smooth_path(leapfrog_for(4), np.random.default_rng(0)).controls(
            factory("verlet")[0](4))


@pytest.mark.parallel(nprocs=2)
def test_parallel_matches_serial():
    """On two ranks (the mesh split) the errors agree with one rank's."""
    g1, g2 = pdeopt.PixelGrid(5, comm=MPI.COMM_SELF), pdeopt.PixelGrid(5, comm=MPI.COMM_WORLD)
    serial_for, _ = factory("parabolic", grid=g1)
    parallel_for, ops2 = factory("parabolic", grid=g2)
    assert ops2.n_owned < 25
    images = np.random.default_rng(7).standard_normal((B, 5, 5))
    path = smooth_path(serial_for(4), np.random.default_rng(0), final_time=T)
    a = consistency_study(serial_for, path, g1.to_field(images)[:, :, None], depths=(4, 8, 16),
                          reference=64)
    b = consistency_study(parallel_for, path, g2.to_field(images)[:, :, None],
                          depths=(4, 8, 16), reference=64)
    assert np.allclose(a.errors, b.errors, rtol=1e-10, atol=0), (a.errors, b.errors)
    assert b.order == pytest.approx(a.order, rel=1e-10)
