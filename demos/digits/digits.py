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
# the controls are (Ruthotto & Haber 2020). The $D_s$ are built from the 1-D identity, first
# and second differences, written in UFL and assembled once by Firedrake as PETSc matrices:
# nine products that span every 3×3 stencil.
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
# KSP. The problem is not convex: it is solved from four initial controls and the four
# networks vote.
#
# Run it with `make demo` (two processes, each training two of the starts: the members of a
# Firedrake `Ensemble`), `python demos/digits/digits.py` (one process, the starts in turn) or
# `mpiexec -n 2 python demos/digits/digits.py` (the mesh partitioned over two processes);
# `PDEOPT_DEMO_MEMBERS=2 mpiexec -n 4 ...` does both. Each start computes the same numbers
# however the processes are arranged.
# Solver options go on the command line with the prefixes `pdeopt_tr_` (the subproblem KSP, e.g.
# `-pdeopt_tr_ksp_type gltr`) and `pdeopt_tr_pc_lmvm_` (its preconditioner). Other schemes and
# solvers on this problem are `benchmarks/digits_study.py`'s settings. `PDEOPT_DEMO_SIZE=ci`
# runs the few-second version the tests run.

# %%
import os
import time

import numpy as np
from mpi4py import MPI

import firedrake as fd
import pdeopt

start_time = time.perf_counter()
CI = os.environ.get("PDEOPT_DEMO_SIZE") == "ci"
comm = MPI.COMM_WORLD
MEMBERS = int(os.environ.get("PDEOPT_DEMO_MEMBERS", "1"))
if MEMBERS < 1 or comm.size % MEMBERS:
    raise pdeopt.InputError(f"PDEOPT_DEMO_MEMBERS={MEMBERS} must divide the {comm.size} ranks "
                            f"of mpiexec -n.")

# %% [markdown]
# ## The data and the baseline
#
# scikit-learn's bundled digits (1797 images, 10 classes), split 60/20/20, stratified and
# seeded. The split is the same on every rank; each rank keeps the pixels of its part of the
# mesh. The baseline is logistic regression on the raw pixels, its regularisation chosen on the
# validation set.

# %%
SEED = 0
ensemble = fd.Ensemble(comm, comm.size // MEMBERS)
grid = pdeopt.PixelGrid(8, comm=ensemble.comm)
data = pdeopt.load_digits(grid, seed=SEED, limit=300 if CI else None)
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
# index by $\beta = 10^{-2}$.
#
# The stencils are taken in *shift coordinates*: the nine products of
# $e_{\pm1} = I \pm \delta + \tfrac12\delta^2$ and $e_0 = I$, whose interior stencils are the
# unit 3×3 stencils, so that $\Theta_{k,s}$ are the entries of the layer's convolution kernel.
# The span is that of the difference products; the coordinates are orthonormal, while those of
# the differences have a Gram matrix of condition number ≈ 506, which the regulariser, the
# initial draw and the trust-region norm would all inherit. The initial mixing matrices are
# normal with variance $2.5^2/(9c)$ for $c$ input channels; the classifier starts with
# variance $1/128$ rather than at $W = 0$, where the loss does not see $u_N$ and the gradient
# vanishes in every layer control. `benchmarks/digits_study.py --study coordinates` compares
# these coordinates and initial scales with the difference coordinates and the classifier at
# zero on the validation set.

# %%
C, N, T = 8, 4, 1.0
ops = pdeopt.assemble_operators(grid, basis=tuple(pdeopt.GRID_SHIFTS))
scheme = pdeopt.ParabolicScheme(ops, pdeopt.Tanh(), step=T / N)
model = pdeopt.Model(pdeopt.Network(scheme, channels=C, depth=N),
                     pdeopt.PooledClassifier(grid, channels=C, classes=10))
regularizer = pdeopt.Regularizer(model, alpha=1e-3, beta=1e-2)
STARTS = 2 if CI else 4
member = ensemble.ensemble_comm.rank
mine = range(member, STARTS, MEMBERS)  # this member's starts
if not mine:
    raise pdeopt.InputError(f"PDEOPT_DEMO_MEMBERS={MEMBERS} members for {STARTS} starts: use "
                            f"at most {STARTS}.")
starts = {i: model.initial_controls(seed=SEED + i, scale=2.5, readout_scale=1.0) for i in mine}
Jhat = pdeopt.ReducedFunctional(model, train.x, train.labels, regularizer, theta=starts[mine[0]])
pdeopt.print0(f"{model.layout.size} controls, {len(train)} training samples, {STARTS} starts, "
              f"{comm.size} rank(s), {MEMBERS} ensemble member(s)")

# %% [markdown]
# ## Training: trust-region Newton-CG from four starts
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
# A product with $G_k$ over the whole batch costs more than a gradient, yet the model only
# needs the batch's average curvature: `SubsampledHessian(0.05, ...)` takes $G_k$ on a
# twentieth of the samples, drawn afresh at every accepted iterate (the subsampled Hessian of
# Byrd, Chin, Neveitt & Nocedal 2011). The objective, the gradient and the ratio test stay
# those of the whole batch, so a poor sample costs a shorter or a rejected step, never a wrong
# answer. A sample's $G_k$ is rank-deficient, though: its data term has rank at most 9 per
# sample (ten classes, probabilities summing to one), 486 for 54 digits against the network's
# 3 706 controls, and the directions it misses carry only the regulariser's small curvature.
# CG's second iteration already steps along them and leaves the region the model is good in,
# so `krylov_limit=1` stops each solve after one: the step is the model's minimiser along
# the L-BFGS direction $P^{-1}g_k$, within the radius. On these 1078 digits an iteration then
# costs a gradient, an objective and a twentieth of a Hessian action.
#
# Each start is a fresh solver (its own L-BFGS memory) on its member's reduced functional; 250
# iterations each. The trained networks
# differ, and so do some of their errors: the model is the average of their class
# probabilities, $\bar p = \frac14\sum_i p(\,\cdot\,;\theta^{(i)})$, the trained controls
# gathered from the members of the ensemble. Rank 0 prints the monitor of its own starts.

# %%


def hits(p, d):
    return float(np.mean(np.argmax(p, axis=1) == d.labels))


def train_from(seed, theta0):
    """Train one network from ``theta0``: its controls, class probabilities and how the
    solve went."""
    solver = pdeopt.TrustRegionNewtonCG(
        Jhat, parameters={"max_it": 8 if CI else 250, "gatol": 1e-6},
        hessian=pdeopt.SubsampledHessian(0.05, pdeopt.GaussNewtonHessian(), krylov_limit=1),
        preconditioner=pdeopt.LMVMPC(), solver_parameters={"ksp_max_it": 30, "monitor": None})
    result = solver.solve(theta0)
    p = {"validation": model.probabilities(result.theta, val.x),
         "test": model.probabilities(result.theta, test.x)}
    return {"seed": seed, "theta": result.theta, "reason": result.reason.name,
            "iterations": result.iterations, "objective": result.objective,
            "history": result.history, "probabilities": p, "counts": result.counts,
            "validation_accuracy": hits(p["validation"], val),
            "test_accuracy": hits(p["test"], test)}


runs = []
for i in mine:
    pdeopt.print0(f"start {i}: seed {SEED + i}")
    runs.append(train_from(SEED + i, starts[i]))
runs = sorted(sum(ensemble.ensemble_comm.allgather(runs), []), key=lambda r: r["seed"])
for r in runs:
    pdeopt.print0(f"start {r['seed'] - SEED}: {r['reason']} after {r['iterations']} iterations, "
                  f"J = {r['objective']:.6f}; validation accuracy "
                  f"{r['validation_accuracy']:.4f}, test accuracy {r['test_accuracy']:.4f}")

# %% [markdown]
# ## Results
#
# Test accuracy of the averaged model beside the baseline and beside each network alone;
# `train_loss` is the averaged model's cross-entropy on the training set. `results/demo/`
# receives the summary, the iteration histories and a convergence plot (written on rank 0).

# %%


def averaged(name):
    return np.mean([r["probabilities"][name] for r in runs], axis=0)


accuracy, validation = hits(averaged("test"), test), hits(averaged("validation"), val)
p_train = np.mean([model.probabilities(r["theta"], train.x) for r in runs], axis=0)
train_loss = float(-np.mean(np.log(p_train[np.arange(len(train)), train.labels])))
pdeopt.print0(f"test accuracy {accuracy:.4f} (baseline {baseline:.4f}), validation "
              f"{validation:.4f}; the networks alone: test "
              + ", ".join(f"{r['test_accuracy']:.4f}" for r in runs))

# the solvers' counts, with the Gauss-Newton actions on the subsamples
counts = sum((r["counts"] for r in runs), pdeopt.Counts()).as_dict()
out = pdeopt.results_dir("demo")
pdeopt.write_json(out / "history.json", {
    "counts": counts,
    "starts": [{"seed": r["seed"], "reason": r["reason"], "history": r["history"]}
               for r in runs]}, comm)
if comm.rank == 0:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    for r in runs:
        it = [h["iteration"] for h in r["history"]]
        ax[0].semilogy(it, [h["objective"] for h in r["history"]], label=f"seed {r['seed']}")
        ax[1].semilogy(it, [h["gradient_norm"] for h in r["history"]])
    ax[0].set(xlabel="iteration", ylabel=r"$\hat J$", title="objective")
    ax[0].legend()
    ax[1].set(xlabel="iteration", ylabel=r"$\|\nabla\hat J\|$", title="gradient norm")
    fig.suptitle(f"{scheme.name} network, TrustRegionNewtonCG, {len(runs)} starts: "
                 f"test accuracy {accuracy:.3f}")
    fig.tight_layout()
    fig.savefig(out / "convergence.png", dpi=120)
summary = {"test_accuracy": accuracy, "baseline_logistic_accuracy": baseline,
           "validation_accuracy": validation, "train_loss": train_loss,
           "iterations": sum(r["iterations"] for r in runs),
           "wall_seconds": time.perf_counter() - start_time, "solver": "TrustRegionNewtonCG",
           "scheme": scheme.name, "seed": SEED,
           "starts": [{k: r[k] for k in ("seed", "iterations", "reason", "objective",
                                         "validation_accuracy", "test_accuracy")}
                      for r in runs]}
pdeopt.write_json(out / "summary.json", summary, comm)
pdeopt.print0(f"wrote {out}/summary.json, history.json, convergence.png")
