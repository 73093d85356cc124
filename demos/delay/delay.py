# %% [markdown]
# # Delay networks: a learned delay and a delayed law at unseen delays
#
# A delay differential equation's rate depends on the past,
#
# $$x'(t) = F\big(x(t), x(t - \tau)\big),$$
#
# and its explicit Euler discretisation on a grid of step $h$ with $\tau = mh$ is a network
# whose layer $k$ reads the state $m$ layers back:
#
# $$u_{k+1} = u_k + h F_\theta(u_k, u_{k-m}).$$
#
# pdeopt's `DelayScheme` carries the last $m + 1$ states as a ring through the layers, and has
# exact tangent-linear, adjoint and second-order adjoint sweeps, so a delay network trains by
# trust-region Newton-CG like every other scheme. A delay between layers,
# $\tau = (m + s)h$, interpolates linearly, $v_k = (1 - s)u_{k-m} + s u_{k-m-1}$, and then
# $\tau$ itself is a control with an exact derivative.
#
# The ODE state lives on a `PointDomain`: one point, the state's components as channels, the
# identity as the only operator. This demo
#
# 1. integrates the Mackey–Glass equation
#    $x' = \beta x_\tau/(1 + x_\tau^{10}) - \gamma x$ with pdeopt's own layers and checks it
#    against jitcdde, an independent adaptive integrator, at the expected first order in $h$;
# 2. learns a delay: from windows of a chaotic trajectory ($\tau = 17$), it trains a neural law
#    and the delay together, starting from $\tau = 15$;
# 3. learns a law $F_\theta(x, x_\tau)$ from trajectories at $\tau = 5$ and $10$ and forecasts
#    at $\tau = 17$ and $25$, where the true law is chaotic: the forecast error over one and
#    five delay periods, and the largest Lyapunov exponents of the learned and the true model;
# 4. learns the reaction of the delayed Hutchinson equation on a mesh from data at two stable
#    delays and predicts the delay at which the homogeneous state starts to oscillate;
# 5. learns a Lyapunov–Krasovskii functional of the linear delay equation over a law of
#    delays and certifies stability with it up to near the exact delay margin.
#
# Run it with `python demos/delay/delay.py` (`--hessian exact` trains with the exact Hessian
# instead of Gauss–Newton, into `results/delay-exact/`); `PDEOPT_DEMO_SIZE=ci` is the version
# the tests run.
# `make reproduce-delay` writes `results/delay/summary.json` and the plots.

# %%
import argparse
import os
import time

import numpy as np
from mpi4py import MPI

import pdeopt

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--hessian", choices=("gauss-newton", "exact"), default="gauss-newton",
                    help="the trust region's Hessian model in every training below")
args, _ = parser.parse_known_args()
CI = os.environ.get("PDEOPT_DEMO_SIZE") == "ci"
OUT = pdeopt.results_dir("delay" if args.hessian == "gauss-newton" else "delay-exact")


def hessian():
    """The trust region's Hessian model (``--hessian``)."""
    return pdeopt.GaussNewtonHessian() if args.hessian == "gauss-newton" else \
        pdeopt.ExactHessian()


start = time.perf_counter()
comm = MPI.COMM_SELF  # a point is not partitioned: one process
ops = pdeopt.assemble_operators(pdeopt.PointDomain(comm=comm))
mackey_glass = pdeopt.MackeyGlassLaw(ops, beta=0.2, gamma=0.1, n=10)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The integrator against jitcdde
#
# `integrate_delay` runs the delay layers with the known law and no controls (the method of
# steps on the layer grid). jitcdde integrates the same problem with an adaptive
# Bogacki–Shampine method and Hermite interpolation of the past, to tolerance $10^{-10}$; the
# maximum difference over $t \in [\tau + 1, 40]$ halves with $h$.

# %%
from jitcdde import jitcdde, t as t_sym, y as y_sym  # noqa: E402


def jitcdde_mackey_glass(tau, times, x0):
    f = [0.2 * y_sym(0, t_sym - tau) / (1 + y_sym(0, t_sym - tau) ** 10) - 0.1 * y_sym(0)]
    dde = jitcdde(f, max_delay=tau, verbose=False)
    dde.constant_past([x0])
    dde.set_integration_parameters(atol=1e-10, rtol=1e-10)
    dde.compile_C(verbose=False)
    dde.integrate_blindly(tau, 1e-3)  # across the history's kink at t = 0
    return np.array([dde.integrate(T)[0] for T in times])


tau, x0 = 17.0, 1.2
times = np.arange(tau + 1.0, 40.5, 1.0)
reference = jitcdde_mackey_glass(tau, times, x0)
steps = (0.1, 0.05, 0.025) if CI else (0.1, 0.05, 0.025, 0.0125)
errors = []
for h in steps:
    x = pdeopt.integrate_delay(mackey_glass, np.full((1, 1, 1), x0), h, tau, 40.0)[:, 0, 0, 0]
    errors.append(float(np.max(np.abs(x[np.rint(times / h).astype(int)] - reference))))
orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
integrator_order = float(orders[-1])
for h, e in zip(steps, errors):
    pdeopt.print0(f"h = {h:<7g} max |x_pdeopt - x_jitcdde| = {e:.3e}")
pdeopt.print0(f"observed order {integrator_order:.3f} (explicit Euler: 1)")

# %% [markdown]
# ## Training windows
#
# A model is trained on *windows*: a segment of a true trajectory as the history, the state
# `depth` layers later as the target. With `history="input"` the network's input is the
# segment itself, oldest state first, so every window has its own history and the delayed
# states inside the window are the model's own. The trajectories start from random constant
# histories so that the windows cover transients as well as the attractor.

# %%
h = 0.5
depth = 24  # layers per window: 12 time units


def trajectories(tau, count, T):
    x0 = rng.uniform(0.3, 1.5, count)
    return pdeopt.integrate_delay(mackey_glass, x0[None, :, None], h, tau, T)[:, 0, :, 0]


def windows(traj, ring, stride):
    """Inputs ``(1, B, ring)`` (history segments, oldest first) and targets ``(1, B, 1)``."""
    starts = np.arange(ring - 1, traj.shape[0] - depth, stride)
    x = np.concatenate([traj[s - ring + 1:s + 1].T for s in starts])
    y = np.concatenate([traj[s + depth] for s in starts])
    return x[None], y[None, :, None]


def delay_model(delay, *, learned=False, max_delay=None, steps=depth):
    forcing = pdeopt.DelayedPerceptron(ops, pdeopt.Tanh(), hidden=16)
    scheme = pdeopt.DelayScheme(forcing, h, delay, learned=learned, max_delay=max_delay,
                                history="input")
    return pdeopt.Model(pdeopt.Network(scheme, channels=1, depth=steps, lift=False,
                                       autonomous=True),
                        pdeopt.FieldMisfit(ops, channels=1))


# %% [markdown]
# ## 2. Learning the delay
#
# The true delay is $\tau^* = 17$ (34 layers); the model starts at $\tau = 15$ with room up to
# $22$ (`max_delay=44` layers, a ring of 46 states), and learns $\tau$ with the law's weights.
# The trust region uses the Gauss–Newton Hessian (the loss is a least-squares misfit, and its
# Gauss–Newton model is SPD); a trial delay outside $[0, 22]$ would be a `ControlDomainError`
# and a rejected step. The regulariser does not decay the delay (it is a `scheme.*` block).

# %%
tau_true, max_delay = 17.0, 44.0
model = delay_model(30.0, learned=True, max_delay=max_delay)
L = model.network.scheme.ring
x_train, y_train = windows(trajectories(tau_true, 6 if CI else 12, 120.0 if CI else 200.0),
                           L, 7)
tau_block = model.layout.slice("scheme.delay")
Jhat = pdeopt.ReducedFunctional(model, x_train, y_train, pdeopt.Regularizer(model, 1e-6, 0.0),
                                theta=model.initial_controls(seed=0))
path = [float(Jhat.point[tau_block][0])]
solver = pdeopt.TrustRegionNewtonCG(
    Jhat, parameters={"max_it": 40 if CI else 200, "gatol": 1e-10},
    hessian=hessian(), solver_parameters={"ksp_max_it": 50},
    callback=lambda it, theta, f, g: path.append(float(theta[tau_block][0])))
result = solver.solve()
path = np.array(path)
delay_error = abs(path[-1] / tau_true - 1)
within = np.flatnonzero(np.abs(path / tau_true - 1) <= 0.01)
delay_iterations = int(within[0]) if within.size else None
pdeopt.print0(f"{x_train.shape[1]} windows; learned tau = {path[-1]:.4f} (true {tau_true}), "
              f"error {100 * delay_error:.3f} %, within 1 % from iteration "
              f"{delay_iterations}; {result.iterations} iterations, J = {result.objective:.3e}")

# %% [markdown]
# ## 3. One law, trained at two delays, forecast at unseen ones
#
# The law is autonomous, $F_\theta(x, x_\tau)$ with no dependence on the layer, so one set of
# controls serves any delay: a model at $\tau = 5$ and one at $\tau = 10$ share $\theta$, and
# the trust region minimises the sum of their misfits (`SumFunctional`). At $\tau = 17$ and
# $25$ a third model with the same $\theta$ forecasts from a true history segment on the
# attractor.

# %%
members = []
for tau_train in (5.0, 10.0):
    m = int(round(tau_train / h))
    law_model = delay_model(m)
    x_w, y_w = windows(trajectories(tau_train, 6 if CI else 12, 120.0 if CI else 200.0), m + 1,
                       7)
    reg = pdeopt.Regularizer(law_model, 1e-6, 0.0) if not members else None
    members.append(pdeopt.ReducedFunctional(law_model, x_w, y_w, reg,
                                            theta=law_model.initial_controls(seed=1)))
law_fit = pdeopt.TrustRegionNewtonCG(
    pdeopt.SumFunctional(members), parameters={"max_it": 40 if CI else 300, "gatol": 1e-10},
    hessian=hessian(), solver_parameters={"ksp_max_it": 50}).solve()
theta_law = law_fit.theta
pdeopt.print0(f"law trained at tau = 5, 10: {law_fit.iterations} iterations, "
              f"J = {law_fit.objective:.3e}")


def rollout(tau, segment, steps, theta=None):
    """States after a history ``segment`` (``(m + 1, batch)``, oldest first): the learned law
    with ``theta``, or the true one."""
    m = int(round(tau / h))
    if theta is None:
        return pdeopt.integrate_delay(mackey_glass, segment[-1][None, :, None], h, tau,
                                      steps * h, history=segment[:-1, None, :, None])[1:, 0, :, 0]
    net = delay_model(m, steps=steps).network
    _, traj = net.forward(theta, segment.T[None])
    return np.stack([state[-1][0, :, 0] for state in traj.states[1:]])


def lyapunov(tau, theta=None, intervals=40, interval=20.0, delta=1e-8):
    r"""The largest Lyapunov exponent from a trajectory and its neighbour (Benettin): the
    history segment is perturbed by ``delta``, both run for ``interval``, the log growth of
    their distance is summed and the neighbour renormalised."""
    m, k = int(round(tau / h)), int(round(interval / h))
    segment = trajectories(tau, 1, 400.0)[-(m + 1):]
    pert = segment + delta * rng.standard_normal(segment.shape) / np.sqrt(m + 1)
    total = 0.0
    for _ in range(intervals):
        both = rollout(tau, np.concatenate([segment, pert], axis=1), k, theta)
        full = np.concatenate([np.concatenate([segment, pert], axis=1), both])[-(m + 1):]
        segment, pert = full[:, :1], full[:, 1:]
        d = np.linalg.norm(pert - segment)
        total += np.log(d / delta)
        pert = segment + delta * (pert - segment) / d
    return total / (intervals * interval)


forecast, exponents, plots = {}, {}, {}
for tau_test in (17.0, 25.0):
    m = int(round(tau_test / h))
    truth = trajectories(tau_test, 1, 300.0)[:, 0]
    t0 = truth.shape[0] - 1 - int(round(5 * tau_test / h))
    segment = truth[t0 - m:t0 + 1, None]
    k5 = int(round(5 * tau_test / h))
    learned = rollout(tau_test, segment, k5, theta_law)[:, 0]
    true = truth[t0 + 1:t0 + 1 + k5]
    k1 = int(round(tau_test / h))
    forecast[str(int(tau_test))] = {
        "one_period": float(np.linalg.norm(learned[:k1] - true[:k1]) / np.linalg.norm(true[:k1])),
        "five_periods": float(np.linalg.norm(learned - true) / np.linalg.norm(true))}
    plots[tau_test] = (true, learned)
    pdeopt.print0(f"tau = {tau_test:g}: forecast relative error {forecast[str(int(tau_test))]}")
exponents = {"true": float(lyapunov(17.0, intervals=5 if CI else 40)),
             "learned": float(lyapunov(17.0, theta_law, intervals=5 if CI else 40))}
pdeopt.print0(f"largest Lyapunov exponent at tau = 17: true {exponents['true']:.4f}, learned "
              f"{exponents['learned']:.4f}")

# %% [markdown]
# ## 4. A delay-induced Hopf bifurcation, predicted from stable data
#
# The Hutchinson equation $u_t = D\Delta u + r u(1 - u(t - \tau))$ on the 8×8 quadrilateral
# mesh (Neumann boundary, $D = 0.01$, $r = 1$) has the homogeneous state $u = 1$, stable for
# $r\tau < \pi/2$ and oscillating past it. A hybrid model keeps the diffusion and learns the
# reaction as a pointwise law $f_\theta(u, v)$ (`HybridDelayLaw`: the known
# `HutchinsonLaw(rate=0)` plus a `DelayedPerceptron` on the identity basis of the same mesh),
# trained on decaying oscillations at $\tau = 0.8$ and $1.2$ only, both below the threshold.
# The threshold $\tau^*$ is then found by bisection on $\tau$ for the learned and for the true
# discrete model alike: the log growth of a small perturbation of the equilibrium between an
# early and a late window of three delays changes sign at $\tau^*$ (a delay between layers is
# the interpolated one, so $\tau$ is not restricted to multiples of $h$).

# %%
grid = pdeopt.PixelGrid(8, comm=comm)
mesh_ops = pdeopt.assemble_operators(grid, basis=("I", "laplace"))
pointwise = pdeopt.assemble_operators(grid, basis=("I",))
D, r, h_mesh, depth_mesh = 0.01, 1.0, 0.05, 20
hutchinson = pdeopt.HutchinsonLaw(mesh_ops, diffusivity=D, rate=r)
X = np.linspace(0.0, 1.0, 8)


def smooth_fields(count, amplitude):
    """``1 + amplitude (a + b cos(pi x) + c cos(pi y))`` with a, b, c uniform in [-1, 1]."""
    a = rng.uniform(-1.0, 1.0, (count, 3))
    images = 1.0 + amplitude * (a[:, 0, None, None] + a[:, 1, None, None] * np.cos(np.pi * X)
                                + a[:, 2, None, None] * np.cos(np.pi * X)[:, None])
    return grid.to_field(images)[:, :, None]


def mesh_windows(tau, count, stride=10):
    m = int(round(tau / h_mesh))
    u = pdeopt.integrate_delay(hutchinson, smooth_fields(count, 0.3), h_mesh, tau, 20.0)
    starts = range(m, u.shape[0] - depth_mesh, stride)
    x = np.concatenate([np.moveaxis(u[s - m:s + 1, :, :, 0], 0, -1) for s in starts], axis=1)
    return x, np.concatenate([u[s + depth_mesh] for s in starts], axis=1)


def hybrid_law():
    return pdeopt.HybridDelayLaw(pdeopt.HutchinsonLaw(mesh_ops, diffusivity=D, rate=0.0),
                                 pdeopt.DelayedPerceptron(pointwise, pdeopt.Tanh(), hidden=8))


members = []
for tau_train in (0.8, 1.2):
    net = pdeopt.Network(pdeopt.DelayScheme(hybrid_law(), h_mesh, int(round(tau_train / h_mesh)),
                                            history="input"),
                         channels=1, depth=depth_mesh, lift=False, autonomous=True)
    hybrid = pdeopt.Model(net, pdeopt.FieldMisfit(pointwise, channels=1))
    x_w, y_w = mesh_windows(tau_train, 3 if CI else 8)
    members.append(pdeopt.ReducedFunctional(
        hybrid, x_w, y_w, None if members else pdeopt.Regularizer(hybrid, 1e-7, 0.0),
        theta=hybrid.initial_controls(seed=1)))
reaction_fit = pdeopt.TrustRegionNewtonCG(
    pdeopt.SumFunctional(members), parameters={"max_it": 20 if CI else 100, "gatol": 1e-12},
    hessian=hessian(), solver_parameters={"ksp_max_it": 50}).solve()
pdeopt.print0(f"reaction learned from {x_w.shape[1]} windows per delay: "
              f"{reaction_fit.iterations} iterations, J = {reaction_fit.objective:.3e}")


def mesh_run(law, theta, tau, u0, T):
    """The trajectory's fields from the constant history ``u0`` at any delay ``tau``."""
    d = tau / h_mesh
    net = pdeopt.Network(pdeopt.DelayScheme(law, h_mesh, d, learned=True, max_delay=d),
                         channels=1, depth=int(round(T / h_mesh)), lift=False, autonomous=True)
    _, traj = net.forward(np.concatenate([theta, [tau]]), u0)
    return np.stack([state[-1][:, 0, 0] for state in traj.states])


perturbation = smooth_fields(1, 0.01) - 1.0


def hopf_threshold(law, theta, low=0.8, high=2.6, halvings=8 if CI else 14):
    u_eq = mesh_run(law, theta, 0.3, np.ones_like(perturbation), 40.0)[-1].mean()
    for _ in range(halvings):
        tau = 0.5 * (low + high)
        deviation = np.abs(mesh_run(law, theta, tau, u_eq + perturbation, 60.0) - u_eq).max(1)
        w = int(round(3 * tau / h_mesh))
        growing = deviation[-w:].max() > deviation[w:2 * w].max()
        low, high = (low, tau) if growing else (tau, high)
    return 0.5 * (low + high)


tau_learned = hopf_threshold(hybrid_law(), reaction_fit.theta)
tau_exact = hopf_threshold(hutchinson, np.zeros(0))
hopf_ratio = tau_learned / tau_exact
pdeopt.print0(f"Hopf threshold: learned tau* = {tau_learned:.4f}, true (h = {h_mesh}) "
              f"{tau_exact:.4f}, ratio {hopf_ratio:.4f} (continuous pi/(2r) = "
              f"{np.pi / (2 * r):.4f})")

# %% [markdown]
# ## 5. A learned Lyapunov–Krasovskii functional
#
# The linear delay equation $x' = -a x(t) - b x(t - \tau)$, $a = 0.5$, $b = 1$, is stable
# exactly for $\tau < \tau_c = \arccos(-a/b)/\sqrt{b^2 - a^2} = 2.418$. Its delay layer
# advances the ring $X_k = (x_{k-n+1}, \dots, x_k)$ by one matrix, $X_{k+1} = A(\tau)X_k$,
# continuous in $\tau$ through the interpolated delay. A Lyapunov–Krasovskii functional
# $V(X;\tau) \ge 0$ of the history segment that decreases along every trajectory certifies
# stability at $\tau$. Because $a < |b|$ the system is not stable for every delay, so no
# delay-independent functional (such as $p x^2 + \sum_j w_j x_{k-j}^2$) can certify it: the
# learned functional is a quadratic form of the whole segment that depends on the delay,
#
# $$V_\theta(X;\tau) = X^TS(\tau)X, \qquad S(\tau) = \sum_j \ell_j(\tau)S_j,$$
#
# with piecewise quartic $\ell_j$ between multiples of $h$ (where $A(\tau)$ has its kinks).
# It is trained over delays drawn uniformly from $[0, 1.2\tau_c]$, so the training law
# reaches past the margin, and over Gaussian history segments. The loss is the relative misfit
# of $V$ to each trajectory's cost to go $h\sum_k \lvert X_k\rvert^2$ (where that cost has
# settled), plus the defect of the decrease condition $V(X_{k+1}) - V(X_k) \le
# -h\lvert X_k\rvert^2$. The trust region minimises it with the block diagonal of its Hessian as
# preconditioner. Then `certify` tests the functional on a fine grid of delays it was not
# trained on: exactly, through the generalised eigenvalue $\lambda_\max(A^TSA, S) < 1$ with
# $S \succ 0$, and along trajectories from 256 test histories.

# %%
lk_equation = pdeopt.LinearDelayEquation(0.5, 1.0)
tau_c = lk_equation.margin()
h_lk, M_lk = (0.2, 14) if CI else (0.1, 29)  # delays up to 1.2 tau_c
lk_V = pdeopt.LyapunovKrasovskiiFunctional(h_lk, M_lk, degree=3 if CI else 4)
draws = 6 * M_lk if CI else 8 * M_lk
lk_taus = np.sort(np.concatenate([
    (np.arange(draws) + rng.uniform(0, 1, draws)) * lk_V.max_tau / draws,  # stratified uniform
    h_lk * np.arange(M_lk + 1)]))  # and the whole-layer delays
lk_loss = pdeopt.LyapunovKrasovskiiLoss(lk_V, lk_equation, lk_taus,
                                        horizon=2 ** 12 if CI else 2 ** 14,
                                        defect_weight=1.0 if CI else 10.0)
lk_fit = pdeopt.TrustRegionNewtonCG(
    lk_loss, parameters={"max_it": 15 if CI else 30, "gatol": 1e-14},
    preconditioner=pdeopt.LyapunovKrasovskiiPC(lk_loss),
    solver_parameters={"ksp_max_it": 1000 if CI else 400}).solve()
certificate = pdeopt.certify(lk_V, lk_fit.theta, lk_equation,
                             np.arange(0.0, lk_V.max_tau, 0.01 if CI else 0.005),
                             histories=48 if CI else 256, steps=200 if CI else 400)
lk_discrete = lk_equation.discrete_margin(h_lk, lk_V.n)
margin_ratio = certificate.certified_delay / tau_c
past = certificate.delays > certificate.certified_delay
pdeopt.print0(f"Lyapunov-Krasovskii: {lk_V.size} controls, {lk_fit.iterations} iterations, "
              f"loss {lk_fit.objective:.2e}; certified for every tested tau <= "
              f"{certificate.certified_delay:.3f} = {margin_ratio:.4f} tau_c (tau_c = "
              f"{tau_c:.4f}; the layer's own margin {lk_discrete:.4f} = "
              f"{lk_discrete / tau_c:.4f} tau_c); certified at "
              f"{np.count_nonzero(certificate.certified[past])} of the {np.count_nonzero(past)} "
              f"delays past it")


def lk_values(tau, X0, steps):
    """V along the trajectories of the linear law's delay layers from the segments ``X0``."""
    law = pdeopt.LinearDelayLaw(ops, lk_equation.a, lk_equation.b)
    net = pdeopt.Network(pdeopt.DelayScheme(law, h_lk, tau / h_lk, learned=True,
                                            max_delay=M_lk, history="input"),
                         channels=1, depth=steps, lift=False, autonomous=True)
    _, traj = net.forward(np.array([tau]), X0[None])
    X = np.stack([np.concatenate(state, axis=-1)[0] for state in traj.states])  # the rings
    S = lk_V.matrices(lk_fit.theta, [tau])[0]
    return np.einsum("kbi,ij,kbj->kb", X, S, X)


# %% [markdown]
# ## Results
#
# `summary.json` holds the figures.

# %%
summary = {
    "integrator_order": integrator_order,
    "integrator_errors": dict(zip(map(str, steps), errors)),
    "mackey_glass": {"forecast_rel_error": {k: v["five_periods"] for k, v in forecast.items()},
                     "forecast_rel_error_one_period": {k: v["one_period"]
                                                       for k, v in forecast.items()},
                     "lyapunov_exponent": exponents},
    "hopf_threshold_ratio": float(hopf_ratio),
    "hopf_threshold": {"learned": float(tau_learned), "true": float(tau_exact),
                       "continuous": float(np.pi / (2 * r))},
    "lyapunov_margin_ratio": float(margin_ratio),
    "lyapunov_krasovskii": {"certified_delay": certificate.certified_delay,
                            "exact_margin": tau_c, "discrete_margin": lk_discrete,
                            "discrete_margin_ratio": lk_discrete / tau_c,
                            "certified_past": int(np.count_nonzero(certificate.certified[past])),
                            "iterations": lk_fit.iterations, "loss": lk_fit.objective,
                            "controls": lk_V.size},
    "learned_delay_rel_error": float(delay_error),
    "learned_delay_iterations": delay_iterations,
    "wall_seconds": time.perf_counter() - start,
}
pdeopt.write_json(OUT / "summary.json", summary)

import matplotlib  # noqa: E402
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(path, "k.-", ms=3)
ax.axhline(tau_true, color="r", lw=0.8, label=r"true $\tau^*$")
ax.set(xlabel="trust-region iteration", ylabel=r"$\tau$", title="the learned delay")
ax.legend()
fig.tight_layout()
fig.savefig(OUT / "convergence.png", dpi=120)
fig, axes = plt.subplots(2, 1, figsize=(8, 6))
for ax, (tau_test, (true, learned)) in zip(axes, plots.items()):
    t = h * np.arange(1, len(true) + 1)
    ax.plot(t, true, "k", lw=1, label="true")
    ax.plot(t, learned, "C1", lw=1, label="learned (trained at 5, 10)")
    ax.set(xlabel="t", ylabel="x", title=rf"forecast at $\tau = {tau_test:g}$")
    ax.legend(loc="upper right")
fig.tight_layout()
fig.savefig(OUT / "forecast.png", dpi=120)
fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
X0 = np.cos(np.pi * h_lk * np.arange(lk_V.n))[None] + np.random.default_rng(5).normal(
    0, 0.3, (1, lk_V.n))
for frac in (0.5, certificate.certified_delay / tau_c, lk_discrete / tau_c + 0.04):
    tau = frac * tau_c
    v = lk_values(tau, X0, 600)[:, 0]
    where = "" if tau <= certificate.certified_delay else " (past the margin)"
    ax.plot(h_lk * np.arange(v.size), v / v[0], lw=1,
            label=rf"$\tau = {frac:.3f}\,\tau_c$" + where)
ax.set(yscale="log", xlabel="t", ylabel=r"$V(x_t;\tau)/V(x_0;\tau)$",
       title="the learned functional along trajectories")
ax.legend(fontsize=8)
bx.plot(certificate.delays / tau_c, np.where(np.isfinite(certificate.ratio),
                                             certificate.ratio - 1.0, np.nan), "k", lw=0.8)
bx.axhline(0.0, color="0.5", lw=0.5)
bx.axvline(certificate.certified_delay / tau_c, color="C2", lw=0.8, label="certified up to")
bx.axvline(lk_discrete / tau_c, color="C3", lw=0.8, ls="--", label="the layer's margin")
bx.axvline(1.0, color="C0", lw=0.8, ls=":", label=r"$\tau_c$")
bx.set(xlabel=r"$\tau/\tau_c$", ylabel=r"$\lambda_\max(A^TSA, S) - 1$",
       title="the certificate: certified below 0")
bx.set_yscale("symlog", linthresh=1e-5)
bx.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "lyapunov.png", dpi=120)
pdeopt.print0(f"wrote {OUT}/summary.json, convergence.png, forecast.png and lyapunov.png in "
              f"{summary['wall_seconds']:.1f} s")
