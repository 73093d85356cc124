"""One adapter per optimizer: run it on a task from a start and report the run alike.

Each returns a record: ``theta`` (the point reached), ``curve`` (``(seconds, loss, work)`` at
every evaluation or iteration, seconds from the first objective evaluation), ``iterations``,
``gradients``, ``hessian_actions``, ``work``, ``reason`` (why it stopped, a PETSc-style
name) and ``gradient_norm`` (where it stopped). Every optimizer runs on the task's reduced
functional: pdeopt's sweeps, so that they differ in their algorithm only. Work is counted in
forward+adjoint equivalents: a gradient is 2, a Hessian or Gauss-Newton action 2 (a
tangent-linear and a reverse sweep), an objective alone 1; a sweep over a subsample of the
batch counts its fraction.

The pdeopt solvers are constructed in :func:`run_trust_region` and :func:`run_tao` only, and
their results read there and in :func:`_record` only; SciPy's in :func:`run_scipy`, torch's in
:func:`run_adam` and :func:`run_lbfgs`.
"""

import time

import numpy as np
import torch

import pdeopt
from petsc4py import PETSc
from pdeopt import LMVMPC, LowRankPC, RegularizerPC

__all__ = ["PRECONDITIONERS", "SCIPY_METHODS", "run_trust_region", "run_tao", "run_scipy",
           "run_adam", "run_lbfgs"]

PRECONDITIONERS = ("none", "regularizer", "lmvm", "low_rank")
#: SciPy's trust-region methods that take Hessian actions (``hessp``).
SCIPY_METHODS = ("trust-krylov", "trust-ncg")


def _preconditioner(name, regularizer):
    if name == "none":
        return None
    if name == "regularizer":
        return RegularizerPC(regularizer)
    if name == "lmvm":
        return LMVMPC()
    if name == "low_rank":
        return LowRankPC(regularizer, rank=10, oversampling=5, rebuild_every=5)
    raise pdeopt.OptionError(f"preconditioner must be one of {PRECONDITIONERS}, got {name!r}.")


def run_trust_region(task, theta0, *, its, preconditioner, target, budget, projected=False,
                     hessian_sample=1.0, krylov_limit=None, growth=1.0, growth_from=0,
                     max_work=np.inf):
    """Trust-region Newton-CG (Gauss-Newton model on a ``hessian_sample`` fraction of the
    batch, with :class:`pdeopt.SubsampledHessian`'s ``krylov_limit``, ``growth`` and
    ``growth_from``) from ``theta0`` until the loss is at most ``target``, ``budget`` seconds
    have passed, ``its`` iterations are done or ``max_work`` is spent; on the projected
    functional if ``projected``."""
    t0 = time.perf_counter()
    Jhat = task.reduced_functional(theta0)  # its taped forward is the first evaluation
    J = pdeopt.ProjectedReducedFunctional(Jhat) if projected else Jhat
    setup = time.perf_counter() - t0
    hessian = pdeopt.GaussNewtonHessian()
    if hessian_sample < 1:
        hessian = pdeopt.SubsampledHessian(hessian_sample, hessian, krylov_limit=krylov_limit,
                                           growth=growth, growth_from=growth_from)
    solver = pdeopt.TrustRegionNewtonCG(
        J, parameters={"max_it": its, "fmin": target, "max_work": max_work,
                       "max_seconds": max(budget - setup, 1e-9)},
        hessian=hessian, preconditioner=_preconditioner(preconditioner, task.regularizer),
        solver_parameters={"ksp_max_it": 30})
    result = solver.solve(theta0[:J.size])
    record = _record(J, setup, result, reason=result.reason.name)
    if projected:
        record["theta"] = J.full(result.theta)
    return record


def run_tao(task, theta0, *, its, tao_type, target, budget):
    """PETSc TAO's ``tao_type`` from ``theta0`` until the loss is at most ``target``
    (``-tao_fmin``), ``budget`` seconds have passed or ``its`` iterations are done."""
    t0 = time.perf_counter()
    Jhat = task.reduced_functional(theta0)
    setup = time.perf_counter() - t0

    def out_of_time(*_):
        if time.perf_counter() - t0 >= budget:
            solver.tao.setConvergedReason(PETSc.TAO.ConvergedReason.CONVERGED_USER)

    solver = pdeopt.TAOSolver(Jhat, solver_parameters={"tao_type": tao_type, "tao_max_it": its,
                                                       "tao_gatol": 0.0, "tao_fmin": target},
                              options_prefix=f"bench_{tao_type}_", callback=out_of_time)
    result = solver.solve()  # from Jhat's point, theta0
    reason = result.reason.name
    if result.reason is pdeopt.TerminationReason.CONVERGED_USER:
        reason = "DIVERGED_MAXTIME"
    return _record(Jhat, setup, result, reason=reason)


def run_scipy(task, theta0, *, its, method, target, budget, hessian="exact",
              max_work=np.inf):
    """SciPy's ``minimize(method=method)`` (``trust-krylov`` or ``trust-ncg``) on the reduced
    functional's NumPy interface (objective, gradient and ``hessp``, the exact Hessian's action
    or, with ``hessian="gauss_newton"``, the Gauss-Newton one), from ``theta0`` until an
    iterate's loss is at most ``target``, ``budget`` seconds have passed, ``its`` iterations
    are done or ``max_work`` is spent."""
    from scipy.optimize import minimize

    if method not in SCIPY_METHODS:
        raise pdeopt.OptionError(f"method must be one of {SCIPY_METHODS}, got {method!r}.")
    if hessian not in ("exact", "gauss_newton"):
        raise pdeopt.OptionError(f"hessian must be 'exact' or 'gauss_newton', got {hessian!r}.")
    t0 = time.perf_counter()
    Jhat = task.reduced_functional(theta0)
    setup = time.perf_counter() - t0
    hessp = Jhat.hessian_action if hessian == "exact" else Jhat.gauss_newton_action
    start, curve, reason = Jhat.counts, [], ["DIVERGED_MAXITS"]

    def work():
        return 1 + (Jhat.counts - start).work

    def callback(intermediate_result):  # after every iteration, at the current iterate
        f, seconds = float(intermediate_result.fun), time.perf_counter() - t0
        curve.append((seconds, f, work()))
        for stop, why in ((f <= target, "CONVERGED_FMIN"), (seconds >= budget, "DIVERGED_MAXTIME"),
                          (curve[-1][2] >= max_work, "DIVERGED_MAXWORK")):
            if stop:
                reason[0] = why
                raise StopIteration

    curve.append((setup, Jhat.objective(theta0), 1))
    result = minimize(Jhat.objective, theta0, jac=Jhat.gradient, hessp=hessp, method=method,
                      callback=callback, options={"maxiter": its, "gtol": 0.0})
    if reason[0] == "DIVERGED_MAXITS" and result.status not in (0, 1):
        reason[0] = f"SCIPY_STATUS_{result.status}"  # e.g. a step below round-off
    counts = Jhat.counts - start
    return {"theta": result.x, "curve": curve, "iterations": int(result.nit),
            "gradients": counts.adjoint, "hessian_actions": counts.hessian_actions,
            "work": work(), "reason": reason[0],
            "gradient_norm": float(np.linalg.norm(Jhat.gradient(result.x)))}


def _record(J, setup, result, reason):
    """A run's record from a pdeopt solver's result on ``J`` (``seconds`` in the history are
    from the solve's start, after ``setup``; the solver counts from its start, so the
    functional's taped forward sweep, before it, adds 1 to the work)."""
    curve = [(setup + h["seconds"], h["objective"], 1 + h["counts"]["work"])
             for h in result.history]
    return {"theta": result.theta, "curve": curve, "iterations": result.iterations,
            "gradients": J.counts.adjoint, "hessian_actions": result.counts.hessian_actions,
            "work": 1 + result.counts.work, "reason": reason,
            "gradient_norm": float(result.gradient_norm)}


def _torch_objective(Jhat):
    r"""``closure(t)`` for torch's optimizers: :math:`\hat J` at the float64 tensor ``t``, with
    ``t.grad`` set to its gradient, both from ``Jhat`` (pdeopt's forward and adjoint sweeps: the
    optimizers compared differ in their algorithm only)."""
    def closure(t):
        theta = t.detach().numpy()
        value = Jhat.objective(theta)
        t.grad = torch.from_numpy(Jhat.gradient(theta))
        return torch.tensor(value, dtype=torch.float64)

    return closure


def run_adam(task, theta0, *, its, lr):
    """``its`` full-batch iterations of torch's Adam with learning rate ``lr`` on the task's
    reduced functional (its objective and gradient) from ``theta0`` (no target: it sets the
    others')."""
    t0 = time.perf_counter()
    Jhat = task.reduced_functional(theta0)
    closure = _torch_objective(Jhat)
    t = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([t], lr=lr)
    curve = []
    for i in range(its):
        J = closure(t)
        curve.append((time.perf_counter() - t0, float(J), 2 * i + 1))
        opt.step()
    theta = t.detach().numpy().copy()
    curve.append((time.perf_counter() - t0, Jhat.objective(theta), 2 * its + 1))
    return {"theta": theta, "curve": curve, "iterations": its, "gradients": its,
            "hessian_actions": 0, "work": 2 * its + 1, "reason": "DIVERGED_MAXITS",
            "learning_rate": lr, "gradient_norm": float(np.linalg.norm(Jhat.gradient(theta)))}


class _Stop(Exception):
    """Raised in torch L-BFGS's closure, which has no other way out, with the reason."""


def run_lbfgs(task, theta0, *, its, target, budget):
    """torch's L-BFGS (strong Wolfe line search, memory 10) on the task's reduced functional
    from ``theta0`` until the loss is at most ``target``, ``budget`` seconds have passed or
    ``its`` iterations are done; the point returned is the one of the lowest loss evaluated."""
    t0 = time.perf_counter()
    Jhat = task.reduced_functional(theta0)
    objective = _torch_objective(Jhat)
    t = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([t], lr=1.0, max_iter=its, history_size=10,
                            line_search_fn="strong_wolfe", tolerance_grad=0.0,
                            tolerance_change=0.0)
    curve, evals = [], [0]
    best = [None, np.inf]  # the point of the lowest loss evaluated, and that loss

    def closure():
        J = objective(t)
        evals[0] += 1
        seconds, value = time.perf_counter() - t0, float(J)
        curve.append((seconds, value, 2 * evals[0]))
        if value < best[1]:
            best[:] = t.detach().numpy().copy(), value
        if value <= target:
            raise _Stop("CONVERGED_FMIN")
        if seconds >= budget:
            raise _Stop("DIVERGED_MAXTIME")
        return J

    try:
        opt.step(closure)
        reason = "DIVERGED_MAXITS"
    except _Stop as stop:
        reason = str(stop)
    return {"theta": best[0], "curve": curve, "iterations": opt.state[t].get("n_iter", 0),
            "gradients": evals[0], "hessian_actions": 0, "work": 2 * evals[0],
            "reason": reason, "gradient_norm": float(np.linalg.norm(Jhat.gradient(best[0])))}
