"""B7: the 2-rank speed-up of a gradient against the machine's own memory-bandwidth gain.

    mpiexec -n 2 python benchmarks/parallel.py [--size M|ci] [--repeat R] [--json]

DESIGN.md §7, B7: the speed-up of one gradient (taped forward + adjoint sweep) on 2 ranks over
1 rank, divided by the gain in triad bandwidth from 1 to 2 processes (a = b + s c in NumPy,
two passes, on arrays far larger than the caches, each process its own). The network is
memory-bound, so the bandwidth gain, not the core count, is the speed-up to expect. Two
parallel modes: the mesh partitioned over both ranks (spatial) and the batch split over two
members of a Firedrake ``Ensemble``. Every
repetition times, side by side: the triad on rank 0 alone and on both ranks, the gradient on
rank 0 alone (COMM_SELF), spatial and ensemble; the ratios are those of the medians.

Writes results/parallel/summary.json (rank 0):
``{"speedup_spatial", "speedup_ensemble", "bandwidth_gain", "efficiency"}`` with efficiency =
best speed-up ÷ bandwidth gain (target ≥ 0.9), plus the median seconds.
"""

import argparse
import json
import time

import firedrake as fd
import numpy as np
from mpi4py import MPI

import pdeopt
from pdeopt.parallel import results_dir, write_json

from _runs import parse_args
from tasks import classifier, random_batch, regularizer

SIZES = {"M": dict(n=256, channels=8, depth=16, batch=4, triad=40_000_000),
         "ci": dict(n=16, channels=2, depth=2, batch=4, triad=1_000_000)}


def triad_seconds(n):
    """Seconds for one triad a = b + s c over arrays of ``n`` doubles (the best of three)."""
    b, c = np.random.default_rng(0).random((2, n))
    a = np.empty(n)
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        np.multiply(c, 3.0, out=a)
        np.add(a, b, out=a)
        best = min(best, time.perf_counter() - t)
    return best


def make_gradient(cfg, comm, batch):
    """The digits network (parabolic, difference coordinates, T = 1) at size ``cfg`` on
    ``comm``, for samples ``batch`` of the (seeded, replicated) random inputs."""
    grid = pdeopt.PixelGrid(cfg["n"], comm=comm)
    model = classifier(grid, C=cfg["channels"], N=cfg["depth"], basis="differences")
    x, y = random_batch(grid, cfg["batch"], np.random.default_rng(0), batch)
    return model, x, y, regularizer(model), model.initial_controls(seed=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="M")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parse_args(parser)
    comm = MPI.COMM_WORLD
    if comm.size != 2:
        raise pdeopt.InputError(f"B7 compares 1 and 2 ranks: run it with mpiexec -n 2, not "
                                f"{comm.size}.")
    cfg = SIZES[args.size]
    everything = slice(0, cfg["batch"])

    serial = None
    if comm.rank == 0:
        model, x, y, reg, theta = make_gradient(cfg, MPI.COMM_SELF, everything)
        serial = pdeopt.ReducedFunctional(model, x, y, reg, theta=theta)
    model, x, y, reg, theta = make_gradient(cfg, comm, everything)
    spatial = pdeopt.ReducedFunctional(model, x, y, reg, theta=theta)
    ensemble = fd.Ensemble(comm, 1)
    model, x, y, reg, theta = make_gradient(cfg, ensemble.comm,
                                            pdeopt.member_slice(ensemble, cfg["batch"]))
    members = pdeopt.EnsembleReducedFunctional(model, x, y, reg, ensemble, theta=theta)
    shift = 1e-3 * np.random.default_rng(1).standard_normal(theta.size)

    def gradient(Jhat, k):
        point = theta + (k % 2) * shift  # a new point: the taped forward re-runs
        Jhat.objective(point)
        Jhat.gradient(point)

    times = {k: [] for k in ("triad_1", "triad_2", "gradient_1", "gradient_spatial",
                             "gradient_ensemble")}
    for k in range(args.repeat + 1):  # the first round compiles kernels and is dropped
        comm.Barrier()
        t = triad_seconds(cfg["triad"]) if comm.rank == 0 else 0.0
        comm.Barrier()
        t2 = triad_seconds(cfg["triad"])
        comm.Barrier()
        t0 = time.perf_counter()
        if comm.rank == 0:
            gradient(serial, k)
        g1 = time.perf_counter() - t0
        comm.Barrier()
        t0 = time.perf_counter()
        gradient(spatial, k)
        gs = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
        t0 = time.perf_counter()
        gradient(members, k)
        ge = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
        if k:
            times["triad_1"].append(comm.bcast(t, root=0))
            times["triad_2"].append(comm.allreduce(t2, op=MPI.MAX))
            times["gradient_1"].append(comm.bcast(g1, root=0))
            times["gradient_spatial"].append(gs)
            times["gradient_ensemble"].append(ge)
    med = {k: float(np.median(v)) for k, v in times.items()}
    # two processes move twice the data in triad_2's time
    bandwidth_gain = 2.0 * med["triad_1"] / med["triad_2"]
    speedup_spatial = med["gradient_1"] / med["gradient_spatial"]
    speedup_ensemble = med["gradient_1"] / med["gradient_ensemble"]
    summary = {"speedup_spatial": speedup_spatial, "speedup_ensemble": speedup_ensemble,
               "bandwidth_gain": bandwidth_gain,
               "efficiency": max(speedup_spatial, speedup_ensemble) / bandwidth_gain,
               "size": args.size, **cfg, "median_seconds": med}
    write_json(results_dir("parallel") / "summary.json", summary, comm)
    if args.json:
        pdeopt.print0(json.dumps(summary))
    else:
        for k in ("speedup_spatial", "speedup_ensemble", "bandwidth_gain", "efficiency"):
            pdeopt.print0(f"{k:18s} {summary[k]:.3f}")


if __name__ == "__main__":
    main()
