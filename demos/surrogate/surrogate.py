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
import os

import numpy as np
from mpi4py import MPI

import pdeopt

CI = os.environ.get("PDEOPT_DEMO_SIZE") == "ci"
comm = MPI.COMM_WORLD

# %% [markdown]
# ## Data from Firedrake
#
# Sources are seeded random cosine series; the solution at nine probe pixels is the target.
# 200 training and 100 test samples (40 and 20 at CI size).

# %%
grid = pdeopt.PixelGrid(12, comm=comm)
probes = [(iy, ix) for iy in (2, 6, 9) for ix in (2, 6, 9)]
n_train, n_test = (40, 20) if CI else (200, 100)
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
regularizer = pdeopt.Regularizer(model, alpha=1e-5, beta=1e-4)
theta0 = model.initial_controls(seed=0)

# %% [markdown]
# ## Training, without and with projection
#
# Both use trust-region Newton-CG with the Gauss–Newton model (an SPD model of a least-squares
# loss) for the same number of iterations. Without projection the controls are
# $(\theta, w)$; with it, $\theta$ alone.

# %%


def relative_error(theta):
    """The relative test error of the surrogate with controls ``theta``."""
    prediction = model.readout.predict(model.output(theta, test.x), model.layout.views(theta))
    return float(np.linalg.norm(prediction - test.targets) / np.linalg.norm(test.targets))


def train_surrogate(J, theta0, options_prefix, full=lambda theta: theta):
    """Gauss-Newton trust-region Newton-CG on ``J`` from ``theta0``; ``full`` maps its
    controls to the model's. The run's summary."""
    solver = pdeopt.TrustRegionNewtonCG(
        J, parameters={"max_it": 6 if CI else 30}, hessian=pdeopt.GaussNewtonHessian(),
        solver_parameters={"monitor": None}, options_prefix=options_prefix)
    result = solver.solve(theta0)
    return {"train_loss": result.objective,
            "test_relative_error": relative_error(full(result.theta)),
            "iterations": result.iterations, "counts": result.counts.as_dict(),
            "history": [h["objective"] for h in result.history]}


Jhat = pdeopt.ReducedFunctional(model, train.x, train.targets, regularizer, theta=theta0)
summary = {"full": train_surrogate(Jhat, theta0, "pdeopt_tr_full_")}
Jp = pdeopt.ProjectedReducedFunctional(Jhat)
summary["projected"] = train_surrogate(Jp, theta0[:Jp.size], "pdeopt_tr_vp_", full=Jp.full)

# %% [markdown]
# ## Results
#
# The relative test error $\|\hat Y - Y\|/\|Y\|$ of each surrogate, the training loss, and the
# work each run did (forward and adjoint sweeps, Hessian actions). `results/surrogate/` receives
# `summary.json` and `convergence.png` (rank 0).

# %%
for name, run in summary.items():
    pdeopt.print0(f"{name:9s}: training loss {run['train_loss']:.4e}, test error "
                  f"{run['test_relative_error']:.3e}, work {run['counts']['work']:.0f} "
                  f"({run['counts']['hessian_actions']} Hessian actions)")
out = pdeopt.write_json(pdeopt.results_dir("surrogate") / "summary.json", summary, comm).parent
if comm.rank == 0:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name in summary:
        ax.semilogy(summary[name]["history"], label=name)
    ax.set(xlabel="trust-region iteration", ylabel=r"$\hat J$",
           title="surrogate training, Gauss-Newton TR")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "convergence.png", dpi=120)
comm.Barrier()
