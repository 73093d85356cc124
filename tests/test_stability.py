"""The stability report: its eigenvalues against the dense eigenvalues of the assembled layer
Jacobians, its bounds against the growth of a perturbation, and its argument checks."""

import json

import numpy as np
import pytest
from mpi4py import MPI

import pdeopt
from pdeopt.analysis import layer_jacobians

C, B, DEPTH = 2, 2, 3


def small_network(scheme="parabolic", step=0.5, comm=MPI.COMM_SELF, activation="tanh",
                  grid=None):
    """A network on a 4x4 grid (``grid``, or a new one on ``comm``) with ``C`` channels and
    ``DEPTH`` layers of ``scheme``."""
    grid = grid or pdeopt.PixelGrid(4, comm=comm)
    ops = pdeopt.assemble_operators(grid, basis=tuple(pdeopt.GRID_SHIFTS))
    cls = pdeopt.SCHEMES[scheme]
    return pdeopt.Network(cls(ops, pdeopt.activation_by_name(activation), step=step),
                          channels=C, depth=DEPTH)


def controls_and_input(network, seed=0, scale=3.0):
    """Random controls (independent per layer, non-zero biases) and an input block."""
    rng = np.random.default_rng(seed)
    theta = network.initial_controls(rng, scale=scale)
    v = network.layout.views(theta)
    v["layers.weight"][...] *= 1.0 + 0.3 * rng.standard_normal(v["layers.weight"].shape)
    v["layers.bias"][...] = 0.3 * rng.standard_normal(v["layers.bias"].shape)
    x = rng.standard_normal((network.ops.n_owned, B, 1))
    return theta, x


def dense(apply, shape):
    """The matrix of a linear map on blocks of ``shape``, column by column."""
    n = int(np.prod(shape))
    cols = []
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1.0
        cols.append(np.asarray(apply(e.reshape(shape))).ravel())
    return np.array(cols).T


def mass_weights(network, shape):
    return np.broadcast_to(network.ops.mass[:, None, None], shape).ravel()


@pytest.mark.parametrize("scheme", ["parabolic", "leapfrog"])
def test_symmetric_eigenvalues_match_dense(scheme):
    r""":math:`\lambda_{\max}(A_k)` from Lanczos agrees to 1e-8 with the dense eigenvalues of
    the M-symmetrised :math:`A_k`, assembled from the tangent-linear layer map (parabolic:
    :math:`A_k = (I - J_k)/h`; leapfrog: the second component of :math:`J_k` on
    :math:`(0, v)` is :math:`2v - c_kh^2A_kv`), and :math:`A_k` is M-self-adjoint."""
    network = small_network(scheme)
    theta, x = controls_and_input(network)
    report = pdeopt.stability_report(network, theta, x)
    lin = layer_jacobians(network, theta, x)
    h = network.step
    shape = lin.trajectory.states[0][-1].shape
    m = mass_weights(network, shape)
    for k, rec in enumerate(report.layers):
        if scheme == "parabolic":
            J = dense(lambda v: lin.action(k, (v,))[0], shape)
            A = (np.eye(len(m)) - J) / h
        else:
            c = (0.5 if k == 0 else 1.0) * h * h
            J = dense(lambda v: lin.action(k, (np.zeros_like(v), v))[1], shape)
            A = (2.0 * np.eye(len(m)) - J) / c
        MA = m[:, None] * A
        assert np.max(np.abs(MA - MA.T)) <= 1e-12 * np.max(np.abs(MA))
        s = np.sqrt(m)
        lam = np.linalg.eigvalsh((s[:, None] * A) / s[None, :])
        assert lam[0] >= -1e-12 * lam[-1]
        assert rec.converged
        assert abs(rec.eigenvalues[1] - lam[-1]) <= 1e-8 * lam[-1]
        expected = 2.0 / lam[-1] if scheme == "parabolic" else 2.0 / np.sqrt(lam[-1])
        assert abs(rec.bound - expected) <= 1e-8 * expected
        assert rec.stable == (h <= rec.bound)
    assert report.bound == min(r.bound for r in report.layers)


def _growth(lin, k, m, steps=200):
    """The largest M-norm ratio of :math:`J_k^j v` to :math:`v` over ``steps`` applications of
    the frozen layer Jacobian, and the final ratio."""
    v = np.random.default_rng(3).standard_normal(lin.trajectory.states[k][0].shape)
    norm0 = np.sqrt(lin.inner(v, v))
    ratios = []
    for _ in range(steps):
        v = lin.action(k, (v,))[0]
        ratios.append(np.sqrt(lin.inner(v, v)) / norm0)
    return max(ratios), ratios[-1]


def test_parabolic_step_above_bound_amplifies():
    """Layer 0 is linearised at the opening's state, which does not depend on h: rebuilt with
    h = 1.05 × its bound (same controls, the layout does not depend on h), its Jacobian
    amplifies a perturbation; with 0.95 × the bound it never increases the M-norm."""
    network = small_network("parabolic")
    theta, x = controls_and_input(network)
    bound = pdeopt.stability_report(network, theta, x).layers[0].bound
    for factor, amplifies in ((1.05, True), (0.95, False)):
        rebuilt = small_network("parabolic", step=factor * bound)
        report = pdeopt.stability_report(rebuilt, theta, x)
        assert abs(report.layers[0].bound - bound) <= 1e-8 * bound
        assert report.layers[0].stable is not amplifies
        lin = layer_jacobians(rebuilt, theta, x)
        largest, last = _growth(lin, 0, lin.m)
        if amplifies:
            assert not report.stable
            assert last > 1e3  # |1 - 2.1| ** 200 = 1.1 ** 200
            assert report.layers[0].growth == pytest.approx(2.1 - 1.0, rel=1e-8)
        else:
            assert largest <= 1.0 + 1e-12
            assert report.layers[0].growth <= 1.0


def test_leapfrog_step_above_bound_amplifies():
    r"""Layer 1's linearisation frozen at the stored trajectory, stepped by a leapfrog scheme
    of step :math:`f\times` its bound: the two-step recurrence
    :math:`v_{j+1} = 2v_j - v_{j-1} - h^2A_1v_j` blows up for :math:`f = 1.05`
    (:math:`h^2\lambda_{\max} = 4.41`, a root of modulus 1.88) and stays bounded for 0.95."""
    network = small_network("leapfrog")
    theta, x = controls_and_input(network)
    rec = pdeopt.stability_report(network, theta, x).layers[1]
    lin = layer_jacobians(network, theta, x)
    th = lin.control(1)
    zero = pdeopt.model.LayerControl(np.zeros_like(th.weight), np.zeros_like(th.bias))
    state, record = lin.trajectory.states[1], lin.trajectory.records[1]
    v0 = np.random.default_rng(3).standard_normal(state[1].shape)
    for factor, amplifies in ((1.05, True), (0.95, False)):
        scheme = pdeopt.LeapfrogScheme(network.ops, pdeopt.Tanh(), step=factor * rec.bound)
        s = (v0, v0)  # p = u: a zero eigenvalue of A_1 leaves the perturbation constant
        ratios = []
        for _ in range(300):
            s, _ = scheme.step_tlm(1, state, record, th, s, zero)
            ratios.append(np.sqrt(lin.inner(s[1], s[1]) / lin.inner(v0, v0)))
        if amplifies:
            assert ratios[-1] > 1e3
        else:
            assert max(ratios) <= 1.5


def test_forward_euler_spectral_radius_matches_dense():
    r"""The reported spectral radius of :math:`J_k = I + hB_k` agrees with the dense
    eigenvalues of the assembled Jacobian, and the bound with
    :math:`\min_\mu -2\operatorname{Re}\mu/|\mu|^2` (0 if some :math:`\operatorname{Re}\mu
    \ge 0`) over the dense eigenvalues :math:`\mu = (\lambda(J_k) - 1)/h`."""
    network = small_network("forward_euler", step=0.25)
    theta, x = controls_and_input(network, scale=1.0)
    report = pdeopt.stability_report(network, theta, x, max_it=200)
    lin = layer_jacobians(network, theta, x)
    h = network.step
    shape = lin.trajectory.states[0][0].shape
    for k, rec in enumerate(report.layers):
        ev = np.linalg.eigvals(dense(lambda v: lin.action(k, (v,))[0], shape))
        assert rec.converged
        assert abs(rec.growth - np.max(np.abs(ev))) <= 1e-6 * np.max(np.abs(ev))
        mu = (ev - 1.0) / h
        mu = mu[np.abs(mu) > 1e-10 * np.max(np.abs(mu))]
        expected = 0.0 if np.any(mu.real >= 0) else np.min(-2 * mu.real / np.abs(mu) ** 2)
        assert rec.bound == pytest.approx(expected, abs=1e-6)
        assert rec.stable == (h <= rec.bound)


def test_forward_euler_bound_of_a_damping_layer():
    r"""With :math:`K_k = -aI` (the centre shift only), :math:`B_k = -a\operatorname{diag}
    \sigma'(z_k)` has real negative eigenvalues and the bound is
    :math:`2/(a\max\sigma')`, checked against the dense Jacobian's eigenvalues."""
    network = small_network("forward_euler", step=0.25)
    theta, x = controls_and_input(network, scale=0.5)
    v = network.layout.views(theta)
    centre = network.ops.names.index("e(0,0)")
    v["layers.weight"][...] = 0.0
    v["layers.weight"][:, centre] = -3.0 * np.eye(C)
    report = pdeopt.stability_report(network, theta, x, max_it=200)
    lin = layer_jacobians(network, theta, x)
    h = network.step
    shape = lin.trajectory.states[0][0].shape
    for k, rec in enumerate(report.layers):
        mu = (np.linalg.eigvals(dense(lambda v: lin.action(k, (v,))[0], shape)) - 1.0) / h
        assert np.all(mu.real < 0) and np.max(np.abs(mu.imag)) <= 1e-10
        expected = np.min(-2 * mu.real / np.abs(mu) ** 2)
        assert rec.converged and rec.bound > 0
        assert rec.bound == pytest.approx(expected, rel=1e-8)
        assert rec.stable == (h <= rec.bound)


def test_zero_layers_are_stable_for_every_step(tmp_path):
    """Layers with zero weights have a zero Jacobian of the forcing: the bound is infinite,
    written to JSON as null."""
    for scheme in ("parabolic", "leapfrog", "forward_euler"):
        network = small_network(scheme)
        theta, x = controls_and_input(network)
        network.layout.views(theta)["layers.weight"][...] = 0.0
        report = pdeopt.stability_report(network, theta, x)
        assert report.stable and report.bound == np.inf
        assert all(r.converged and r.growth == pytest.approx(1.0) for r in report.layers)
        assert json.loads(json.dumps(report.as_dict()))["bound"] is None


def test_report_prints_and_writes_json(tmp_path, capsys):
    """The table has a row per layer; the JSON round-trips with the per-layer records."""
    network = small_network("parabolic")
    theta, x = controls_and_input(network)
    report = pdeopt.stability_report(network, theta, x)
    report.print(comm=MPI.COMM_SELF)
    out = capsys.readouterr().out
    assert "parabolic" in out and len(out.strip().splitlines()) == 2 + DEPTH
    path = pdeopt.write_json(tmp_path / "stability.json", report.as_dict(), comm=MPI.COMM_SELF)
    data = json.loads(path.read_text())
    assert [r["layer"] for r in data["layers"]] == list(range(DEPTH))
    assert data["stable"] == report.stable and data["bound"] == pytest.approx(report.bound)
    assert pdeopt.step_bound(network, theta, x) == pytest.approx(report.bound, rel=1e-5)


def test_unconverged_iteration_is_reported():
    """An iteration cap below what the tolerance needs gives ``converged=False`` and the
    iterations used, not a silent number."""
    network = small_network("parabolic")
    theta, x = controls_and_input(network)
    report = pdeopt.stability_report(network, theta, x, max_it=2, rtol=1e-14)
    assert not report.converged
    assert all(r.iterations == 2 and not r.converged for r in report.layers)
    assert "did not converge" in report.table()


def test_bad_inputs_raise():
    network = small_network("parabolic")
    theta, x = controls_and_input(network)
    with pytest.raises(pdeopt.InputError, match="theta has shape"):
        pdeopt.stability_report(network, theta[:-1], x)
    bad = theta.copy()
    bad[0] = np.inf
    with pytest.raises(pdeopt.InputError, match="theta contains NaN"):
        pdeopt.stability_report(network, bad, x)
    nan_x = x.copy()
    nan_x[0, 0, 0] = np.nan
    with pytest.raises(pdeopt.InputError, match="x contains 1 NaN"):
        pdeopt.stability_report(network, theta, nan_x)
    with pytest.raises(pdeopt.InputError, match="x: network input must have shape"):
        pdeopt.stability_report(network, theta, x[:-1])
    with pytest.raises(pdeopt.InputError, match="must be a pdeopt.Network"):
        pdeopt.stability_report("network", theta, x)
    with pytest.raises(pdeopt.InputError, match="max_it"):
        pdeopt.stability_report(network, theta, x, max_it=0)
    with pytest.raises(pdeopt.InputError, match="rtol"):
        pdeopt.step_bound(network, theta, x, rtol=0.0)
    for scheme in ("imex", "verlet"):
        other = small_network(scheme)
        th, xx = controls_and_input(other)
        with pytest.raises(pdeopt.OptionError, match=f"scheme '{scheme}'"):
            pdeopt.stability_report(other, th, xx)


@pytest.mark.parallel(nprocs=2)
def test_parallel_matches_serial():
    """On two ranks the report's eigenvalues and bounds agree with one rank's."""
    grid, grid1 = pdeopt.PixelGrid(4, comm=MPI.COMM_WORLD), pdeopt.PixelGrid(4, comm=MPI.COMM_SELF)
    parallel, serial = small_network("parabolic", grid=grid), small_network("parabolic", grid=grid1)
    assert parallel.ops.n_owned < 16  # the mesh really is split
    theta, _ = controls_and_input(serial)
    images = np.random.default_rng(7).standard_normal((B, 4, 4))
    x_full, x_par = grid1.to_field(images)[:, :, None], grid.to_field(images)[:, :, None]
    a = pdeopt.stability_report(serial, theta, x_full)
    b = pdeopt.stability_report(parallel, theta, x_par)
    for ra, rb in zip(a.layers, b.layers):
        assert rb.converged
        assert rb.eigenvalues[1] == pytest.approx(ra.eigenvalues[1], rel=1e-8)
        assert rb.bound == pytest.approx(ra.bound, rel=1e-8)
