# %% [markdown]
# # Handwritten digits with a parabolic network, trained as an optimal-control problem
#
# A network here is a discretised differential equation. Each 8×8 digit is a $Q_1$ field $x$
# on a quadrilateral mesh of the unit square whose vertices are the pixels. An opening layer
# lifts it to $C$ channels, $u_0 = \sum_s D_s x\,\Theta_{0,s}^T + b_0$, and $N$ steps of the
# *parabolic* scheme
#
# $$u_{k+1} = u_k - h\,K_k^*\sigma(K_k u_k + b_k), \qquad K_k u = \sum_s D_s u\,\Theta_{k,s}^T,$$
#
# advance it to $u_N$, with $h = T/N$ and $K^*$ the adjoint of $K$ in the lumped-mass inner
# product. For monotone $\sigma$ this is a stable discretisation of a dissipative flow whatever
# the controls are (Ruthotto & Haber 2020). The $D_s$ are the nine products of the 1-D identity,
# first and second differences, written in UFL and assembled once by Firedrake as PETSc
# matrices: together they span every 3×3 stencil.
#
# Training is optimal control: minimise over all the controls
# $\theta = (\Theta_{k,s}, b_k, W, c)$
#
# $$\hat J(\theta) = \frac1B\sum_b \mathrm{CE}\big(W\,\mathrm{pool}(u_N^{(b)}) + c,\ y^{(b)}\big)
#   + \frac\alpha2\|\theta\|^2 + \frac{\beta}{2h}\sum_k\|\theta_{k+1}-\theta_k\|^2$$
#
# subject to the scheme. pyadjoint differentiates it: the gradient is one adjoint sweep of the
# network, a Hessian action one tangent-linear and one second-order adjoint sweep. A
# reduced-space trust-region Newton-CG method minimises it, its subproblems solved by a PETSc
# KSP; `PDEOPT_DEMO_SOLVER=tao` uses PETSc TAO through pdeopt's adapter instead.
#
# Run it with `make demo`, or `mpiexec -n 2 python demos/digits/digits.py` to partition the mesh;
# `PDEOPT_DEMO_MEMBERS=2 mpiexec -n 2 ...` splits the training batch over two members of a
# Firedrake `Ensemble` instead (and `-n 4` with 2 members does both).
# Solver options go on the command line with the prefixes `pdeopt_tr_` (the subproblem KSP, e.g.
# `-pdeopt_tr_ksp_type gltr`), `pdeopt_pc_lmvm_` (its preconditioner) and `pdeopt_tao_`
# (`-pdeopt_tao_tao_type nls`). Set `PDEOPT_DEMO_SIZE=ci` for the few-second version the tests
# run.

# %%
import time

_WALL0 = time.time()

import json
import os
from pathlib import Path

from mpi4py import MPI

import firedrake as fd
import pdeopt


def process_start():
    """Wall-clock time this process started (Linux), else this script's first line."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return _WALL0


T_START = min(process_start(), _WALL0)
comm = MPI.COMM_WORLD
SIZE = os.environ.get("PDEOPT_DEMO_SIZE", "full")
if SIZE not in ("full", "ci"):
    raise pdeopt.OptionError(f"PDEOPT_DEMO_SIZE must be 'full' or 'ci', got {SIZE!r}.")
SCHEME = os.environ.get("PDEOPT_DEMO_SCHEME", "parabolic")
if SCHEME not in pdeopt.SCHEMES:
    raise pdeopt.OptionError(f"PDEOPT_DEMO_SCHEME must be one of {sorted(pdeopt.SCHEMES)}, "
                             f"got {SCHEME!r}.")
SOLVER = os.environ.get("PDEOPT_DEMO_SOLVER", "trust_region")
if SOLVER not in ("trust_region", "tao"):
    raise pdeopt.OptionError(f"PDEOPT_DEMO_SOLVER must be 'trust_region' or 'tao', got {SOLVER!r}.")
MEMBERS = int(os.environ.get("PDEOPT_DEMO_MEMBERS", "1"))
if MEMBERS < 1 or comm.size % MEMBERS:
    raise pdeopt.InputError(f"PDEOPT_DEMO_MEMBERS={MEMBERS} must divide the {comm.size} ranks "
                            f"of mpiexec -n.")
OUT = Path(os.environ.get("PDEOPT_RESULTS", "results")) / "demo"

# %% [markdown]
# ## The data and the baseline
#
# scikit-learn's bundled digits (1797 images, 10 classes), split 60/20/20, stratified and
# seeded. The split is the same on every rank; each rank keeps the pixels of its part of the
# mesh, and each ensemble member its part of the training batch. The baseline is logistic
# regression on the raw pixels, its regularisation chosen on the validation set.

# %%
SEED = 0
ensemble = fd.Ensemble(comm, comm.size // MEMBERS)
grid = pdeopt.PixelGrid(8, comm=ensemble.comm)
data = pdeopt.load_digits(grid, seed=SEED, limit=300 if SIZE == "ci" else None)
train, val, test = data["train"], data["validation"], data["test"]


def logistic_baseline():
    from sklearn.linear_model import LogisticRegression
    flat = {k: d.images.reshape(len(d), -1) for k, d in data.items()}
    best = max((LogisticRegression(C=C, max_iter=5000).fit(flat["train"], train.labels)
                for C in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)),
               key=lambda m: m.score(flat["validation"], val.labels))
    return float(best.score(flat["test"], test.labels)), best.C


baseline, baseline_C = logistic_baseline()
pdeopt.print0(f"logistic regression on pixels: test accuracy {baseline:.4f} (C={baseline_C})")

# %% [markdown]
# ## The network
#
# $C = 8$ channels, $N = 4$ layers of the parabolic scheme up to $T = 1$, tanh activations;
# the readout pools 2×2 (16 coarse pixels × 8 channels = 128 features) into a linear
# classifier. The regulariser weighs decay by $\alpha = 10^{-3}$ and smoothness in the layer
# index by $\beta = 10^{-2}$. These settings were chosen on the validation set by
# `benchmarks/digits_study.py --study` (20 variations of depth, final time, width,
# regularisation, activations and scheme); smaller $\alpha, \beta$ fit the training set better
# and the validation set worse, and unbounded activations (softplus, smoothed ReLU) overfit.
# `PDEOPT_DEMO_SCHEME=forward_euler` (or `leapfrog`, `imex`) trains another scheme on the same
# problem.

# %%
C, N, T = 8, 4, 1.0
ops = pdeopt.assemble_operators(grid)
scheme = pdeopt.SCHEMES[SCHEME](ops, pdeopt.Tanh(), step=T / N)
model = pdeopt.Model(pdeopt.Network(scheme, channels=C, depth=N),
                     pdeopt.PooledClassifier(grid, channels=C, classes=10))
regularizer = pdeopt.Regularizer(model.layout, alpha=1e-3, beta=1e-2, step=T / N)
mine = pdeopt.member_slice(ensemble, len(train))
Jhat = pdeopt.EnsembleReducedFunctional(model, train.x[:, mine], train.labels[mine],
                                        regularizer, ensemble,
                                        theta=model.initial_controls(seed=SEED))
pdeopt.print0(f"{model.layout.size} controls, {len(train)} training samples, "
              f"{comm.size} rank(s), {MEMBERS} ensemble member(s)")

# %% [markdown]
# ## Training: trust-region Newton-CG
#
# At the iterate $\theta_k$ the step minimises the quadratic model
# $m_k(p) = g_k^T p + \tfrac12 p^T G_k p$ inside the trust region $\|p\|_P \le \Delta_k$, by
# Steihaug's truncated CG (PETSc KSP `stcg`). Far from a minimum the exact Hessian of this
# non-convex problem has many negative directions, and CG stops at the first; the
# Gauss–Newton matrix $G_k = J_\ell^T \nabla^2\mathrm{CE}\,J_\ell + H_R$ ($J_\ell$ the
# Jacobian of the logits: one tangent-linear and one adjoint sweep per product) is SPD and lets
# CG work. The preconditioner $P$ is L-BFGS (a PETSc LMVM matrix fed with the accepted
# iterates), which also sets the trust-region norm and so scales the very different controls
# (opening, layers, classifier) against each other. CG stops at the Eisenstat–Walker forcing
# term; the step is accepted when the actual reduction is a fair part of the predicted one.
#
# With `PDEOPT_DEMO_SOLVER=tao`, PETSc TAO's limited-memory BFGS (`lmvm`) runs instead.

# %%
if SOLVER == "trust_region":
    from pdeopt.solvers.preconditioners import LMVMPC

    solver = pdeopt.TrustRegionNewtonCG(
        Jhat, {"max_it": 8 if SIZE == "ci" else 60, "hessian": "gauss_newton", "gatol": 1e-6},
        preconditioner=LMVMPC(), solver_parameters={"ksp_max_it": 30})
    result = solver.solve()
    solver_name, reason = "TrustRegionNewtonCG", result.reason.name
else:
    solver = pdeopt.TAOSolver(Jhat, {"tao_type": "lmvm",
                                     "tao_max_it": 20 if SIZE == "ci" else 300,
                                     "tao_gatol": 1e-6})
    result = solver.solve()
    solver_name, reason = f"TAO-{solver.type}", result.reason
pdeopt.print0(f"{solver_name}: {reason} after {result.iterations} iterations, "
              f"J = {result.objective:.6f}")

# %% [markdown]
# ## Results
#
# Test accuracy of the trained network beside the baseline; `results/demo/` receives the
# summary, the iteration history and a convergence plot (written on rank 0).

# %%
accuracy = model.accuracy(result.theta, test.x, test.labels)
validation = model.accuracy(result.theta, val.x, val.labels)
train_loss = float(Jhat.objective(result.theta) - regularizer.value(result.theta))
pdeopt.print0(f"test accuracy {accuracy:.4f} (baseline {baseline:.4f}), validation "
              f"{validation:.4f}")

summary = {"test_accuracy": accuracy, "baseline_logistic_accuracy": baseline,
           "validation_accuracy": validation,
           "train_loss": train_loss, "iterations": result.iterations,
           "wall_seconds": 0.0, "solver": solver_name, "scheme": scheme.name,
           "seed": SEED}
if comm.rank == 0:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "history.json").write_text(json.dumps(
        {"reason": reason, "counts": Jhat.counts, "history": result.history}, indent=1))
    it = [h["iteration"] for h in result.history]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    ax[0].semilogy(it, [h["objective"] for h in result.history])
    ax[0].set(xlabel="iteration", ylabel=r"$\hat J$", title="objective")
    ax[1].semilogy(it, [h["gradient_norm"] for h in result.history])
    ax[1].set(xlabel="iteration", ylabel=r"$\|\nabla\hat J\|$", title="gradient norm")
    fig.suptitle(f"{scheme.name} network, {solver_name}: test accuracy {accuracy:.3f}")
    fig.tight_layout()
    fig.savefig(OUT / "convergence.png", dpi=120)
    summary["wall_seconds"] = time.time() - T_START
    tmp = OUT / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(OUT / "summary.json")
comm.Barrier()
pdeopt.print0(f"wrote {OUT}/summary.json, history.json, convergence.png")
