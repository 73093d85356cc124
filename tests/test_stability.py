"""The stability report: its eigenvalues against the dense eigenvalues of the assembled layer
Jacobians, its bounds against the growth of a perturbation, and its argument checks."""

import json

import numpy as np
import pytest
from mpi4py import MPI

import pdeopt
from pdeopt.analysis import layer_jacobians
from problems import make_problem

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


def _verlet_blocks(lin, k, shape):
    r"""The dense :math:`A_{k,1}`, :math:`A_{k,2}` and :math:`J_k` of a Verlet layer, from the
    tangent-linear layer map alone: :math:`J_k = \begin{pmatrix} I & hA_{k,1} \\ -c_kA_{k,2}
    & I - c_khA_{k,2}A_{k,1}\end{pmatrix}`."""
    n = int(np.prod(shape))
    zero = np.zeros(shape)
    Jyz = dense(lambda v: lin.action(k, (zero, v))[0], shape)
    Jzy = dense(lambda v: lin.action(k, (v, zero))[1], shape)
    Jyy = dense(lambda v: lin.action(k, (v, zero))[0], shape)
    Jzz = dense(lambda v: lin.action(k, (zero, v))[1], shape)
    h, c = lin.scheme.h, lin.scheme.coefficient(k)
    A1, A2 = Jyz / h, -Jzy / c
    assert np.max(np.abs(Jyy - np.eye(n))) == 0.0
    assert np.max(np.abs(Jzz - (np.eye(n) - c * h * A2 @ A1))) <= 1e-12 * np.max(np.abs(Jzz))
    return A1, A2, np.block([[Jyy, Jyz], [Jzy, Jzz]])


def test_verlet_bound_matches_dense():
    r"""Per Verlet layer, :math:`\nu_{\max}` agrees to 1e-8 with the spectral radius of the
    dense :math:`A_{k,2}A_{k,1}` (assembled from the tangent-linear layer map), whose
    eigenvalues are real and non-negative; the bound is :math:`2/\sqrt{r_k\nu_{\max}}`
    (:math:`r_0 = 3/2`); the growth is the spectral radius of the dense :math:`J_k`, whose
    eigenvalues satisfy :math:`\xi + 1/\xi = 2 - c_kh\nu`."""
    network = small_network("verlet", step=0.3)
    theta, x = controls_and_input(network)
    report = pdeopt.stability_report(network, theta, x, max_it=200)
    lin = layer_jacobians(network, theta, x)
    h = network.step
    shape = lin.trajectory.states[0][0].shape
    for k, rec in enumerate(report.layers):
        A1, A2, J = _verlet_blocks(lin, k, shape)
        nu = np.linalg.eigvals(A2 @ A1)
        top = np.max(np.abs(nu))
        assert np.max(np.abs(nu.imag)) <= 1e-10 * top and np.min(nu.real) >= -1e-10 * top
        assert rec.converged
        assert abs(rec.eigenvalues[1] - top) <= 1e-8 * top
        r = 1.5 if k == 0 else 1.0
        assert rec.bound == pytest.approx(2.0 / np.sqrt(r * top), rel=1e-8)
        xi = np.linalg.eigvals(J)
        assert rec.growth == pytest.approx(np.max(np.abs(xi)), rel=1e-6)
        assert rec.stable == (h <= rec.bound)
    assert 1.0 <= max(r.growth for r in report.layers)


@pytest.mark.parametrize("factor, amplifies", [(1.05, True), (0.95, False)])
def test_verlet_step_above_bound_amplifies(factor, amplifies):
    r"""Layer 1's linearisation frozen at the stored trajectory and iterated with a Verlet
    scheme of step :math:`f\times` its bound: a perturbation blows up for :math:`f = 1.05`
    (:math:`h^2\nu_{\max} = 4.41`, a root of modulus 1.88) and stays bounded for 0.95: every
    root is on the unit circle, and the M-norm saturates at the condition number of the
    eigenvectors (:math:`A_{k,2}A_{k,1}` is not M-normal) instead of growing."""
    network = small_network("verlet", step=0.3)
    theta, x = controls_and_input(network)
    rec = pdeopt.stability_report(network, theta, x, max_it=200).layers[1]
    lin = layer_jacobians(network, theta, x)
    th = lin.control(1)
    zero = pdeopt.model.LayerControl(np.zeros_like(th.weight), np.zeros_like(th.bias))
    state, record = lin.trajectory.states[1], lin.trajectory.records[1]
    rng = np.random.default_rng(3)
    s0 = (rng.standard_normal(state[0].shape), rng.standard_normal(state[1].shape))
    scheme = pdeopt.VerletScheme(network.ops, pdeopt.Tanh(), step=factor * rec.bound)
    norm0 = np.sqrt(lin.inner(s0[0], s0[0]) + lin.inner(s0[1], s0[1]))
    s, ratios = s0, []
    for _ in range(300 if amplifies else 1200):
        s, _ = scheme.step_tlm(1, state, record, th, s, zero)
        ratios.append(np.sqrt(lin.inner(s[0], s[0]) + lin.inner(s[1], s[1])) / norm0)
    if amplifies:
        assert ratios[-1] > 1e3
    else:
        windows = [max(ratios[i:i + 300]) for i in range(0, 1200, 300)]
        assert windows[-1] <= 1.25 * windows[-2] and windows[-1] < 1e2, windows


def _imex_dense_bound(lin, k, shape, B, h, rtol=1e-12):
    """The first step s with rho(S_s (I + s B)) > 1, bisected on dense matrices."""
    n = int(np.prod(shape))

    def rho(s):
        S = dense(lin.scheme.with_step(s).implicit_step, shape)
        return np.max(np.abs(np.linalg.eigvals(S @ (np.eye(n) + s * B))))
    lo, hi = 1e-6 * h, h
    while rho(hi) <= 1.0 + 1e-9:
        lo, hi = hi, 2.0 * hi
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rho(mid) <= 1.0 + 1e-9 else (lo, mid)
    return lo, rho


def damping_imex_network():
    r"""An IMEX network whose layers damp, :math:`K_k = -3I` plus a small random stencil:
    :math:`B_k - M^{-1}L` is stable, and the explicit part limits the step."""
    network = small_network("imex", step=0.5)
    theta, x = controls_and_input(network, scale=0.5)
    v = network.layout.views(theta)
    v["layers.weight"][:, network.ops.names.index("e(0,0)")] -= 3.0 * np.eye(C)
    return network, theta, x


def test_imex_bound_matches_dense():
    r"""Per IMEX layer, the growth is the spectral radius of the dense
    :math:`J_k = S_h(I + hB_k)`, and the bound, the first :math:`s` with
    :math:`\rho(S_s(I + sB_k)) > 1`, agrees to 1e-8 with the same bisection on dense matrices
    (:math:`B_k` from the tangent-linear layer map with :math:`S_h` divided out)."""
    network, theta, x = damping_imex_network()
    report = pdeopt.stability_report(network, theta, x, max_it=200)
    lin = layer_jacobians(network, theta, x)
    h = network.step
    shape = lin.trajectory.states[0][0].shape
    for k, rec in enumerate(report.layers):
        J = dense(lambda u: lin.action(k, (u,))[0], shape)
        B = dense(lambda u: lin.forcing_action(k, u), shape)
        S = dense(lin.scheme.implicit_step, shape)
        assert np.allclose(J, S @ (np.eye(len(B)) + h * B), atol=1e-12)
        assert rec.converged
        assert rec.growth == pytest.approx(np.max(np.abs(np.linalg.eigvals(J))), rel=1e-8)
        expected, rho = _imex_dense_bound(lin, k, shape, B, h)
        assert 0 < rec.bound < np.inf
        assert rec.bound == pytest.approx(expected, rel=1e-8)
        assert rho(1.01 * rec.bound) > 1.0 > rho(0.99 * rec.bound) - 1e-9
        assert rec.stable == (h <= rec.bound)


def test_imex_step_above_bound_amplifies():
    """Layer 0 (linearised at the opening's state, independent of h) rebuilt with 1.05 × its
    bound amplifies a perturbation over 300 applications; with 0.95 × it decays."""
    network, theta, x = damping_imex_network()
    bound = pdeopt.stability_report(network, theta, x, max_it=200).layers[0].bound
    for factor, amplifies in ((1.05, True), (0.95, False)):
        rebuilt = pdeopt.Network(network.scheme.with_step(factor * bound), channels=C,
                                 depth=DEPTH)
        rec = pdeopt.stability_report(rebuilt, theta, x, max_it=200).layers[0]
        assert rec.bound == pytest.approx(bound, rel=1e-8)
        assert rec.stable is not amplifies and (rec.growth > 1.0) is amplifies
        lin = layer_jacobians(rebuilt, theta, x)
        _, last = _growth(lin, 0, lin.m, steps=300)
        assert bool(last > 1.0) is amplifies


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
    for scheme in ("parabolic", "leapfrog", "forward_euler", "verlet", "imex"):
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

    class Unknown(pdeopt.ForwardEulerScheme):
        name = "unknown"
    other = pdeopt.Network(Unknown(network.ops, pdeopt.Tanh(), step=0.5), channels=C, depth=2)
    with pytest.raises(pdeopt.OptionError, match="scheme 'unknown'"):
        pdeopt.stability_report(other, other.initial_controls(np.random.default_rng(0)), x)


def test_stability_column_in_the_trust_region_monitor(capsys):
    """``monitor_columns`` adds the smallest layer margin to every monitor line and history
    entry; at the last iterate it is the margin of ``step_bound`` there."""
    grid, model, Jhat, theta = make_problem("parabolic", comm=MPI.COMM_SELF)
    x = Jhat.x[:, :3]
    column = pdeopt.stability_column(model.network, x)
    solver = pdeopt.TrustRegionNewtonCG(Jhat, parameters={"max_it": 3},
                                        solver_parameters={"monitor": None},
                                        monitor_columns={"margin": column})
    result = solver.solve(theta)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if " TR " in ln]
    assert len(lines) == len(result.history) and all(" margin " in ln for ln in lines)
    size = model.network.layout.size
    expected = pdeopt.step_bound(model.network, result.theta[:size], x) / model.network.step - 1
    last = [e for e in result.history if e["accepted"]][-1]["columns"]["margin"]
    assert last == pytest.approx(expected, rel=1e-6)
    with pytest.raises(pdeopt.OptionError, match="monitor_columns"):
        pdeopt.TrustRegionNewtonCG(Jhat, monitor_columns={"margin": 1.0})
    with pytest.raises(pdeopt.InputError, match="network input must have shape"):
        pdeopt.stability_column(model.network, x[:-1])


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
