# %% [markdown]
# # Transport with a hyperbolic network: stability, fronts and depth
#
# The task is the simplest hyperbolic PDE, pure advection by a constant wind $w$,
#
# $$u_t + w\cdot\nabla u = 0 \quad\text{in } \Omega\times(0, T], \qquad
#   u(x, 0) = u_0(x), \qquad u = u_0(x - wt) \text{ on the inflow boundary},$$
#
# whose solution is the exact transport $u(x, T) = u_0(x - wT)$. The initial profiles are fronts
# $u_0 = \tanh((\nu\cdot x - c)/\varepsilon)$ at a random position and orientation; as the width
# $\varepsilon \to 0$ the front sharpens into a discontinuity. A network is asked to learn the
# map $u_0 \mapsto u(T)$ from examples, and is compared with the classical first-order upwind
# finite-volume scheme, which Firedrake solves for every sample.
#
# The network is a *hyperbolic* one, the leapfrog discretisation of a second-order flow
# (Ruthotto & Haber 2020),
#
# $$u_{k+1} = 2u_k - u_{k-1} - h^2 K_k^*\sigma(K_k u_k + b_k), \qquad
#   u_1 = u_0 - \tfrac12 h^2 K_0^*\sigma(K_0 u_0 + b_0),$$
#
# with $K_k u = \sum_s D_s u\,\Theta_{k,s}^T$ a 3×3 convolution and $K_k^*$ its adjoint in the
# lumped-mass inner product. Its linearisation is a wave equation $u_{tt} = -A_k u$,
# $A_k = K_k^*\operatorname{diag}\sigma'(z_k)K_k \succeq 0$: the leapfrog recurrence on an
# eigenvalue $\lambda$ of $A_k$ has characteristic roots of product one, on the unit circle
# exactly when $h^2\lambda \le 4$. So each layer has a CFL-like bound
# $h \le 2/\sqrt{\lambda_{\max}(A_k)}$; inside it nothing grows (the scheme conserves an energy,
# which is why leapfrog rather than the dissipative parabolic scheme suits transport), past it a
# mode grows by $\xi = \tfrac12(|2 - h^2\lambda| + \sqrt{(2 - h^2\lambda)^2 - 4}) > 1$ per layer.
# (Verlet would serve too; leapfrog is the one-field form of the same second-order flow and keeps
# a single state per layer.)
#
# The demo (a) builds the data, (b) trains the network with trust-region Newton-CG on a field
# misfit and prints its per-layer stability report, (c) pushes the same controls past the bound
# and watches a perturbation blow up, (d) compares the errors of network and upwind scheme as the
# front sharpens, and (e) as the depth $N$ grows at fixed $T$.
#
# Run it with `python demos/transport/transport.py` (`mpiexec -n 2 ...` partitions the mesh);
# `PDEOPT_DEMO_SIZE=ci` is the small version the tests run. Trust-region options go on the
# command line under the prefix `pdeopt_tr_transport_` (e.g. `-pdeopt_tr_transport_ksp_type
# nash`).

# %%
import os
import time

import numpy as np
from mpi4py import MPI

import pdeopt
from pdeopt.analysis import layer_jacobians

start_time = time.perf_counter()
CI = os.environ.get("PDEOPT_DEMO_SIZE") == "ci"
comm = MPI.COMM_WORLD

# %% [markdown]
# ## (a) The data
#
# The grid's pixels are the points of the fields, and also the centres of the upwind scheme's
# finite-volume cells: Firedrake's $DG_0$ on the pixel cells, with the upwind flux
# $(w\cdot n)\,u^{\mathrm{up}}$ on every facet and the exact solution as inflow data, is
# assembled once as PETSc matrices $A$ (the fluxes) and $G$ (the inflow); explicit Euler then
# advances the whole batch block, $U^{n+1} = (I - \Delta t M^{-1}A)U^n - \Delta t M^{-1}G\,g^n$.
# It is stable for Courant numbers $\Delta t(|w_x|/h_x + |w_y|/h_y) \le 1$; asking it for fewer
# steps is an error, and by default it takes the fewest stable ones.
#
# The wind is $w = (1, 0.5)$ and $T = 0.1$: the fronts move about $2.4 \times 1.2$ pixels on the
# 24×24 grid (1.1 × 0.55 on the CI's 12×12). Training uses fronts of several widths together;
# each width has its own unseen test fronts.

# %%
NX = 12 if CI else 24
W, T = (1.0, 0.5), 0.1
WIDTHS = [0.2, 0.1, 0.05, 0.0] if CI else [0.2, 0.1, 0.05, 0.025, 0.0125, 0.0]
N_TRAIN, N_TEST = (8, 8) if CI else (16, 16)  # per width
grid = pdeopt.PixelGrid(NX, comm=comm)


def concatenate(parts):
    """The inputs and exact targets of several data sets as one block."""
    return (np.concatenate([d.x for d in parts], axis=1),
            np.concatenate([d.targets for d in parts], axis=1))


train_sets = [pdeopt.advection_data(grid, N_TRAIN, seed=2 * i, width=eps, velocity=W, time=T)
              for i, eps in enumerate(WIDTHS)]
test_sets = [pdeopt.advection_data(grid, N_TEST, seed=2 * i + 1, width=eps, velocity=W, time=T)
             for i, eps in enumerate(WIDTHS)]
x_train, y_train = concatenate(train_sets)
x_test, y_test = concatenate(test_sets)
upwind_steps = train_sets[0].steps
pdeopt.print0(f"{x_train.shape[1]} training and {x_test.shape[1]} test fronts on a {NX}x{NX} "
              f"grid, widths {WIDTHS}; upwind: {upwind_steps} steps, Courant number "
              f"{train_sets[0].courant:.3f}")


def relative_error(images, exact):
    """:math:`\\|u - u_{\\mathrm{exact}}\\| / \\|u_{\\mathrm{exact}}\\|` over pixels and samples."""
    return float(np.linalg.norm(images - exact) / np.linalg.norm(exact))


# %% [markdown]
# ## (b) The network and its training
#
# $C = 2$ channels on the 3×3 stencils in shift coordinates; the opening layer lifts $u_0$
# linearly to both channels, and the field misfit
# $J = \frac1{2B}\sum_{b,c}(u_{N,c}^{(b)} - y^{(b)})^TM(u_{N,c}^{(b)} - y^{(b)})$ asks every
# channel for $u(T)$; the prediction is their mean. The second channel matters: a single field
# started at rest evolves by a symmetric operator, $u_N \approx \cos(T\sqrt{A})u_0$, which moves
# a front both ways; a second channel lifted by a different stencil can carry the missing
# "velocity" $-w\cdot\nabla u_0$. The network runs $N = 4$ layers up to the network time
# $T_{\mathrm{net}} = 2$ ($h = 0.5$).
#
# The controls start at the identity map (the opening copies $u_0$ into both channels, the
# layers are small random convolutions), so the initial loss is that of doing nothing. The
# trust-region Newton-CG method uses the Gauss–Newton model, exact for this least-squares loss
# up to the network's curvature, solved by PETSc's Steihaug CG.

# %%
C, T_NET = 2, 2.0
DEPTH = 4
DEPTHS = [1, 2, 4] if CI else [1, 2, 4, 8]
ITERATIONS = 10 if CI else 80
ops = pdeopt.assemble_operators(grid, basis=tuple(pdeopt.GRID_SHIFTS))
identity = ops.names.index("e(0,0)")


def build(depth, step):
    """The leapfrog model of ``depth`` layers with step ``step``."""
    scheme = pdeopt.LeapfrogScheme(ops, pdeopt.Tanh(), step=step)
    return pdeopt.Model(pdeopt.Network(scheme, channels=C, depth=depth),
                        pdeopt.FieldMisfit(ops, channels=C))


def initial_controls(model, seed=0):
    """Small random layers behind an opening that copies :math:`u_0` into every channel."""
    theta = model.initial_controls(seed=seed, scale=0.3)
    opening = model.layout.views(theta)["opening.weight"]
    opening[identity, :, 0] += 1.0
    return theta


def predict(model, theta, x):
    """The channel mean of :math:`u_N`, as images (collective)."""
    return grid.to_image(model.output(theta, x).mean(axis=2, keepdims=True))[..., 0]


def train(depth):
    """Train the ``depth``-layer network; its model, controls and solver result."""
    model = build(depth, T_NET / depth)
    theta0 = initial_controls(model)
    Jhat = pdeopt.ReducedFunctional(model, x_train, np.repeat(y_train, C, axis=2),
                                    pdeopt.Regularizer(model, alpha=1e-6, beta=1e-5),
                                    theta=theta0)
    solver = pdeopt.TrustRegionNewtonCG(
        Jhat, parameters={"max_it": ITERATIONS, "gatol": 1e-9},
        hessian=pdeopt.GaussNewtonHessian(),
        solver_parameters={"ksp_max_it": 40}, options_prefix="pdeopt_tr_transport_")
    result = solver.solve(theta0)
    return model, result


runs = {}
for depth in sorted(set(DEPTHS) | {DEPTH}):
    runs[depth] = train(depth)
    r = runs[depth][1]
    pdeopt.print0(f"N = {depth}: {r.reason.name} after {r.iterations} iterations, loss "
                  f"{r.history[0]['objective']:.4e} -> {r.objective:.4e}")
model, result = runs[DEPTH]
theta = result.theta
loss_initial, loss_final = result.history[0]["objective"], result.objective

# %% [markdown]
# The stability report linearises every layer at the forward trajectory of test fronts and
# finds $\lambda_{\max}(A_k)$ by Lanczos in the mass inner product: the bound
# $2/\sqrt{\lambda_{\max}}$, the margin (bound$/h - 1$) and the growth factor of the linearised
# layer (1 on the unit circle).

# %%
probe = x_test[:, ::max(1, x_test.shape[1] // 8)]  # a few fronts of every width
net_size = model.network.layout.size
report = pdeopt.stability_report(model.network, theta[:net_size], probe, max_it=300)
report.print(comm)
violations_within = sum(not r.stable for r in report.layers)

# %% [markdown]
# ## (c) Past the bound
#
# The same trained controls, rebuilt with the step $h' = 1.5\min_k 2/\sqrt{\lambda_{\max}(A_k)}$:
# the layers whose bound is now exceeded have a root of modulus $\xi > 1$. A perturbation
# $\delta u_0$ of the first state is carried by the linearised layers,
# $\delta s_{k+1} = J_k\,\delta s_k$ (the scheme's tangent-linear kernel with the controls
# fixed, `pdeopt.analysis.layer_jacobians`), starting at rest like the network. A few power
# iterations of $\delta u_0 \mapsto \delta u_N$, from a checkerboard (the highest frequency,
# where $\lambda_{\max}$ lives), find the most amplified perturbation; its norm layer by
# layer, $\|\delta u_{k+1}\|_M/\|\delta u_k\|_M$, is the growth each layer inflicts.
#
# Within the bound this ratio can still exceed one for a layer: the leapfrog conserves an energy
# of the pair $(u_{k-1}, u_k)$, not $\|u_k\|$, and consecutive layers have different $A_k$;
# what the bound excludes is exponential growth. Past it, the unstable layers multiply the
# perturbation by about their growth factors.

# %%
pushed_step = 1.5 * report.bound
pushed = build(DEPTH, pushed_step)
pushed_report = pdeopt.stability_report(pushed.network, theta[:net_size], probe,
                                        max_it=300)
pushed_report.print(comm)
violations_past = sum(not r.stable for r in pushed_report.layers)
growth_past = max(r.growth for r in pushed_report.layers)


def amplification(network, iterations=10):
    r"""The largest amplification :math:`\|\delta u_N\|_M / \|\delta u_0\|_M` found by power
    iteration, and the per-layer growth of that perturbation."""
    lin = layer_jacobians(network, theta[:net_size], probe)
    shape = lin.trajectory.states[0][-1].shape
    du = np.array(np.broadcast_to(((-1.0) ** (grid.ix + grid.iy))[:, None, None], shape))
    for _ in range(iterations):
        du /= np.sqrt(lin.inner(du, du))
        state, norms = (du, du), [1.0]
        for k in range(network.N):
            state = lin.action(k, state)
            norms.append(np.sqrt(lin.inner(state[1], state[1])))
        du = state[1].copy()
    return norms[-1], [b / a for a, b in zip(norms, norms[1:])]


(amp_within, per_layer_within), (amp_past, per_layer_past) = \
    amplification(model.network), amplification(pushed.network)
pdeopt.print0(f"h = {model.network.step:.4g} (least bound {report.bound:.4g}): "
              f"{violations_within} unstable layers, a perturbation amplified {amp_within:.3g}x "
              f"(per layer {', '.join(f'{g:.3g}' for g in per_layer_within)})")
pdeopt.print0(f"h' = {pushed_step:.4g}: {violations_past} unstable layers, largest growth factor "
              f"{growth_past:.3g}; a perturbation amplified {amp_past:.3g}x "
              f"(per layer {', '.join(f'{g:.3g}' for g in per_layer_past)})")

# %% [markdown]
# ## (d) As the front sharpens
#
# The trained network's error against the exact transport on the unseen fronts of each width,
# beside the upwind scheme's. The upwind scheme is first-order: its numerical diffusion smears a
# front over a few cells whatever its width, so its relative error grows as $\varepsilon \to 0$.

# %%
error_vs_width = {"widths": WIDTHS, "network": [], "upwind": []}
for d in test_sets:
    error_vs_width["network"].append(relative_error(predict(model, theta, d.x), d.exact_images))
    error_vs_width["upwind"].append(relative_error(d.upwind_images, d.exact_images))
for eps, e_net, e_up in zip(WIDTHS, error_vs_width["network"], error_vs_width["upwind"]):
    pdeopt.print0(f"width {eps:<7g}: network {e_net:.4f}, upwind {e_up:.4f}")

# %% [markdown]
# ## (e) Against the depth
#
# Networks of $N$ layers at the same $T_{\mathrm{net}}$, each trained as above, beside the upwind
# scheme with $N$ explicit steps where its CFL condition allows ($N \ge$ the fewest stable
# steps; `null` otherwise). Here the fronts travel about 2.4 × 1.2 pixels, and a single layer
# already reaches that far (the opening's 3×3 stencil and the layer's $K^*$ after $K$, 5×5), so
# depth buys the network little: its error is nearly flat in $N$, limited by what its 3×3
# convolutions and two channels can represent of a shifted front, not by the time step. The
# upwind scheme behaves the other way from a consistent method at fixed grid: past the fewest
# stable steps its Courant number falls and its numerical diffusion, $\propto (1 - \nu)$ per
# cell, grows, so more steps give a larger error.

# %%
exact_test = np.concatenate([d.exact_images for d in test_sets])
error_vs_N = {"N": DEPTHS, "network": [], "upwind": []}
for depth in DEPTHS:
    m, r = runs[depth]
    error_vs_N["network"].append(relative_error(predict(m, r.theta, x_test), exact_test))
    if pdeopt.courant_number(grid, W, T, depth) <= 1.0:
        up = [pdeopt.advection_data(grid, N_TEST, seed=2 * i + 1, width=eps, velocity=W,
                                    time=T, steps=depth).upwind_images
              for i, eps in enumerate(WIDTHS)]
        error_vs_N["upwind"].append(relative_error(np.concatenate(up), exact_test))
    else:
        error_vs_N["upwind"].append(None)
    pdeopt.print0(f"N = {depth}: network {error_vs_N['network'][-1]:.4f}, upwind "
                  f"{error_vs_N['upwind'][-1]} (fewest stable steps "
                  f"{pdeopt.cfl_steps(grid, W, T)})")

# %% [markdown]
# ## Results
#
# `results/transport/` receives `summary.json`, the training histories (`convergence.png`),
# the per-layer steps against their bounds (`eigenvalues.png`), and the errors against the width
# and the depth (`error_vs_width.png`, `error_vs_N.png`), written on rank 0.

# %%
summary = {
    "margin_min": report.margin, "violations_within_bound": violations_within,
    "report_converged": report.converged and pushed_report.converged,
    "violations_past_bound": violations_past, "growth_past_bound": growth_past,
    "amplification_within_bound": amp_within, "amplification_past_bound": amp_past,
    "perturbation_growth_within_bound": per_layer_within,
    "perturbation_growth_past_bound": per_layer_past,
    "step": model.network.step, "step_past_bound": pushed_step,
    "loss_initial": loss_initial, "loss_final": loss_final,
    "iterations": result.iterations, "reason": result.reason.name,
    "error_vs_width": error_vs_width, "error_vs_N": error_vs_N,
    "stability": report.as_dict(), "stability_past_bound": pushed_report.as_dict(),
    "grid": NX, "channels": C, "depth": DEPTH, "velocity": list(W), "time": T,
    "upwind_steps": upwind_steps, "wall_seconds": time.perf_counter() - start_time}
out = pdeopt.write_json(pdeopt.results_dir("transport") / "summary.json", summary, comm).parent
if comm.rank == 0:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for depth, (_, r) in runs.items():
        ax.semilogy([h["objective"] for h in r.history], label=f"N = {depth}")
    ax.set(xlabel="trust-region iteration", ylabel=r"$\hat J$",
           title="leapfrog network on transport, Gauss-Newton TR")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "convergence.png", dpi=120)

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    k = np.arange(DEPTH)
    for rep, label, marker in ((report, "trained", "o"), (pushed_report, "pushed", "s")):
        ax[0].semilogy(k, [r.bound for r in rep.layers], marker, label=f"bound, {label}")
        ax[0].axhline(rep.step, ls="--", color="C0" if label == "trained" else "C1",
                      label=f"h = {rep.step:.3g} ({label})")
        ax[1].plot(k, [r.growth for r in rep.layers], marker + "-", label=label)
    ax[0].set_xticks(k)
    ax[1].set_xticks(k)
    ax[0].set(xlabel="layer k", ylabel=r"$2/\sqrt{\lambda_{\max}(A_k)}$",
              title="per-layer step bound")
    ax[0].legend(fontsize=7)
    ax[1].axhline(1.0, color="k", lw=0.5)
    ax[1].set(xlabel="layer k", ylabel="growth factor", title="growth of the linearised layer")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(out / "eigenvalues.png", dpi=120)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    shown = [max(e, 1e-3) for e in WIDTHS]  # the discontinuity at the left end
    ax.semilogx(shown, error_vs_width["network"], "o-", label="network")
    ax.semilogx(shown, error_vs_width["upwind"], "s-", label="upwind FV")
    ax.set(xlabel=r"front width $\varepsilon$ (0 drawn at $10^{-3}$)",
           ylabel="relative error", title="error as the front sharpens")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "error_vs_width.png", dpi=120)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.loglog(DEPTHS, error_vs_N["network"], "o-", label="network, N layers")
    ok = [(n, e) for n, e in zip(DEPTHS, error_vs_N["upwind"]) if e is not None]
    if ok:
        ax.loglog(*zip(*ok), "s-", label="upwind FV, N steps")
    ax.axvline(pdeopt.cfl_steps(grid, W, T), color="k", lw=0.5, ls=":", label="fewest stable steps")
    ax.set_xticks(DEPTHS, [str(n) for n in DEPTHS])
    ax.minorticks_off()
    ax.set(xlabel="N", ylabel="relative error", title=f"error against depth, T = {T}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "error_vs_N.png", dpi=120)
comm.Barrier()
pdeopt.print0(f"wrote {out}/summary.json and the plots in {time.perf_counter() - start_time:.1f} s")
