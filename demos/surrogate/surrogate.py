# %% [markdown]
# # A PDE surrogate, trained with and without variable projection
#
# The data come from Firedrake. A source field $f$ on the unit square drives the
# diffusion–reaction equation
#
# $$-\kappa\Delta u + c\,u = f, \qquad \kappa\,\partial_n u = 0,$$
#
# discretised with $Q_1$ elements on a 12×12 pixel mesh and solved for every sample at once by
# one PETSc `KSPMatSolve`; the targets are $u$ at a handful of probe pixels. The surrogate is a
# parabolic network on the same mesh, $x = f \mapsto u_N$, read out at the probes by a linear
# map $W$:
#
# $$\hat J(\theta, w) = \frac{1}{2B}\|\tilde F(\theta)\tilde W - Y\|_F^2 + R(\theta, w),
#   \qquad \tilde F = [u_N(z_p)]_{p}\ \text{with a column of ones}.$$
#
# The loss is quadratic in the readout weights $w = (W, c)$, so for given network controls
# $\theta$ the best weights solve a small regularised least-squares problem.
# **Variable projection** (Newman, Ruthotto, Hart & van Bloemen Waanders 2021) eliminates them:
# the trust-region method sees only
#
# $$J_p(\theta) = \hat J(\theta, w^*(\theta)), \qquad
#   \nabla^2 J_p = H_{\theta\theta} - H_{\theta w} H_{ww}^{-1} H_{w\theta},$$
#
# the exact Schur complement, applied with two Hessian actions of $\hat J$ and a dense solve
# with $H_{ww}$, which is known in closed form. Both runs start from the same network controls;
# the projected one always has the best readout for its features.
#
# Run it with `python demos/surrogate/surrogate.py` (`mpiexec -n 2 ...` partitions the mesh).
# `PDEOPT_DEMO_SIZE=ci` is the few-second version the tests run.

# %%
import json
import os
from pathlib import Path

import numpy as np
from mpi4py import MPI

import pdeopt

comm = MPI.COMM_WORLD
SIZE = os.environ.get("PDEOPT_DEMO_SIZE", "full")
if SIZE not in ("full", "ci"):
    raise pdeopt.OptionError(f"PDEOPT_DEMO_SIZE must be 'full' or 'ci', got {SIZE!r}.")
OUT = Path(os.environ.get("PDEOPT_RESULTS", "results")) / "surrogate"

# %% [markdown]
# ## Data from Firedrake
#
# Sources are seeded random cosine series; the solution at nine probe pixels is the target.
# 200 training and 100 test samples (40 and 20 at CI size).

# %%
grid = pdeopt.PixelGrid(12, comm=comm)
probes = [(iy, ix) for iy in (2, 6, 9) for ix in (2, 6, 9)]
n_train, n_test = (40, 20) if SIZE == "ci" else (200, 100)
data = pdeopt.diffusion_reaction_data(grid, n_train + n_test, probes, seed=0,
                                      diffusivity=0.05, reaction=1.0)
train, test = data[:n_train], data[n_train:]
pdeopt.print0(f"{len(train)} training and {len(test)} test sources; targets at "
              f"{len(probes)} probes, |y| ~ {np.abs(train.targets).mean():.3f}")

# %% [markdown]
# ## The surrogate
#
# $C = 4$ channels, $N = 4$ parabolic layers up to $T = 1$; the readout maps the $9C$ probe
# values to the 9 targets.

# %%
C, N, T = 4, 4, 1.0
ops = pdeopt.assemble_operators(grid)
scheme = pdeopt.ParabolicScheme(ops, pdeopt.Tanh(), step=T / N)
model = pdeopt.Model(pdeopt.Network(scheme, channels=C, depth=N),
                     pdeopt.ProbeRegression(grid, C, probes, len(probes)))
regularizer = pdeopt.Regularizer(model.layout, alpha=1e-5, beta=1e-4, step=T / N)
theta0 = model.initial_controls(seed=0)

# %% [markdown]
# ## Training, without and with projection
#
# Both use trust-region Newton-CG with the Gauss–Newton model (an SPD model of a least-squares
# loss) for the same number of iterations. Without projection the controls are
# $(\theta, w)$; with it, $\theta$ alone.

# %%
iterations = 6 if SIZE == "ci" else 30
params = {"max_it": iterations, "hessian": "gauss_newton"}
Jhat = pdeopt.ReducedFunctional(model, train.x, train.targets, regularizer, theta=theta0)
full = pdeopt.TrustRegionNewtonCG(Jhat, params, options_prefix="pdeopt_tr_full_").solve(theta0)
Jp = pdeopt.ProjectedReducedFunctional(Jhat)
theta0_net = theta0[:Jp.size]
projected = pdeopt.TrustRegionNewtonCG(Jp, params, options_prefix="pdeopt_tr_vp_").solve(theta0_net)

# %% [markdown]
# ## Results
#
# The relative test error $\|\hat Y - Y\|/\|Y\|$ of each surrogate, the training loss, and the
# work each run did (forward and adjoint sweeps, Hessian actions). `results/surrogate/` receives
# `summary.json` and `convergence.png` (rank 0).

# %%


def test_error(theta):
    prediction = model.readout.predict(model.output(theta, test.x), model.layout.views(theta))
    return float(np.linalg.norm(prediction - test.targets) / np.linalg.norm(test.targets))


summary = {}
for name, result, theta in (("full", full, full.theta),
                            ("projected", projected, Jp.full(projected.theta))):
    summary[name] = {"train_loss": result.objective, "test_relative_error": test_error(theta),
                     "iterations": result.iterations, "counts": result.counts,
                     "history": [h["objective"] for h in result.history]}
    pdeopt.print0(f"{name:9s}: training loss {result.objective:.4e}, test error "
                  f"{summary[name]['test_relative_error']:.3e}, {result.counts}")

if comm.rank == 0:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    tmp = OUT / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(OUT / "summary.json")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name in summary:
        ax.semilogy(summary[name]["history"], label=name)
    ax.set(xlabel="trust-region iteration", ylabel=r"$\hat J$",
           title="surrogate training, Gauss-Newton TR")
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "convergence.png", dpi=120)
comm.Barrier()
