"""B9: each layer kernel against its roofline bound on this machine.

    [mpiexec -n 2] python benchmarks/roofline.py [--sizes S,M,D] [--scheme parabolic]
                                                [--repeat R] [--json]

DESIGN.md §7, B9. The machine first: the STREAM triad ``a = b + s c`` (a compiled loop, 24 bytes
per element as STREAM counts them, arrays far larger than the caches) and the DGEMM rate
(NumPy's BLAS, 2048²), on one core and, under ``mpiexec -n 2``, on both at once (the sum over
the processes). Then the digits network's layer (its scheme, the shift basis) at the sizes

- ``S``: 64×64 grid, 16 samples, 8 channels; ``M``: 256×256, 4 samples, 8 channels;
- ``D``: the digits demo's, 8×8 grid, 1078 samples, 8 channels,

on one core (rank 0): the forward step, the adjoint step and the tangent-linear +
second-order adjoint pair, each timed on its own (the best of ``R``, as STREAM reports its
rates; the triad and DGEMM rates are the best too), against the roofline's
lower bound max(bytes ÷ triad bandwidth, flops ÷ DGEMM rate). The bytes and flops are the
minimum the kernel must move and do, not what the implementation happens to do: each state
block it reads or writes once (``V = n × batch × C`` doubles), the operators' CSR arrays once,
and the flops of its products :math:`L(u;\\Theta)` — ``2 S C² n b`` for the mix and
``2 nnz b C`` for the stencils — counted from the equations of
:mod:`pdeopt.model.forcing`. Target: every ratio ≤ 3.

Writes results/bench/roofline.json (rank 0).
"""

import argparse
import ctypes
import json
import time

import numpy as np
from mpi4py import MPI
from pyop2 import compilation

import pdeopt
from pdeopt.model.control import LayerControl
from pdeopt.parallel import results_dir, write_json

from _runs import parse_args

SIZES = {"S": dict(n=64, batch=16, channels=8), "M": dict(n=256, batch=4, channels=8),
         "D": dict(n=8, batch=1078, channels=8), "ci": dict(n=8, batch=6, channels=2)}
TRIAD = r"""
#include <stdint.h>
void triad(int64_t n, double *restrict a, const double *restrict b, const double *restrict c,
           double s)
{
    for (int64_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}
"""
#: Per kernel: the state blocks it reads and writes at least, its mixes and contractions
#: (each 2 S C² n b flops), and the distinct blocks it applies the stencils to (each
#: 2 nnz b C flops), from the equations of pdeopt.model.forcing's SymmetricForcing (parabolic)
#: and ResNetForcing (forward Euler).
COUNTS = {
    "parabolic": {"forward": (3, 2, 2), "adjoint": (4, 4, 2), "tlm_soa": (12, 13, 8)},
    "forward_euler": {"forward": (3, 1, 1), "adjoint": (4, 2, 1), "tlm_soa": (12, 6, 4)},
}


def best_time(f, repeat):
    """The least of ``repeat`` timings after a warm-up (STREAM's convention: on a shared
    machine the spread is the neighbours', the best is the kernel's)."""
    f()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def machine(comm, repeat, triad_n=2**24, gemm_n=2048):
    """Triad bandwidth (bytes/s) and DGEMM rate (flop/s) on rank 0 alone and on every rank at
    once (summed over the ranks)."""
    lib = compilation.load(TRIAD, "c", comm=comm)
    lib.triad.argtypes = [ctypes.c_int64] + [ctypes.c_void_p] * 3 + [ctypes.c_double]
    rng = np.random.default_rng(comm.rank)
    a, b, c = np.zeros(triad_n), rng.random(triad_n), rng.random(triad_n)
    A, B = rng.random((gemm_n, gemm_n)), rng.random((gemm_n, gemm_n))

    def triad():
        lib.triad(triad_n, a.ctypes.data, b.ctypes.data, c.ctypes.data, 3.0)

    def gemm():
        A @ B

    out = {}
    for name, f, work in (("triad_bandwidth", triad, 24.0 * triad_n),
                          ("dgemm_rate", gemm, 2.0 * gemm_n**3)):
        comm.Barrier()
        one = best_time(f, repeat) if comm.rank == 0 else 0.0
        comm.Barrier()
        every = best_time(f, repeat)
        out[f"{name}_1"] = work / comm.bcast(one)
        out[f"{name}_{comm.size}"] = comm.size * work / comm.allreduce(every, op=MPI.MAX)
    return out


def layer_kernels(cfg, scheme_name, rng):
    """The scheme's step, adjoint step and tangent-linear + second-order adjoint steps on
    random states at one size, on COMM_SELF; their minimum bytes and flops."""
    grid = pdeopt.PixelGrid(cfg["n"], comm=MPI.COMM_SELF)
    ops = pdeopt.assemble_operators(grid, basis=tuple(pdeopt.GRID_SHIFTS))
    scheme = pdeopt.SCHEMES[scheme_name](ops, pdeopt.Tanh(), step=0.25)
    C, B = cfg["channels"], cfg["batch"]

    def block():
        return rng.standard_normal((ops.n_owned, B, C))

    def control():
        return LayerControl(rng.standard_normal((ops.S, C, C)) / 3, rng.standard_normal(C))

    th, th_dot = control(), control()
    state = (block(),)
    (u1,), z = scheme.step(0, state, th)
    state_dot = (block(),)
    lam, mu = (block(),), (block(),)
    _, z_dot = scheme.step_tlm(0, state, z, th, state_dot, th_dot)
    kernels = {
        "forward": lambda: scheme.step(0, state, th),
        "adjoint": lambda: scheme.step_adjoint(0, state, z, th, lam),
        "tlm_soa": lambda: (scheme.step_tlm(0, state, z, th, state_dot, th_dot),
                            scheme.step_soa(0, state, z, th, state_dot, z_dot, th_dot, lam,
                                            mu)),
    }
    V = 8.0 * ops.n_owned * B * C
    nnz = ops.forward.owned.nnz
    csr = 12.0 * nnz + 4.0 * (ops.forward.owned.shape[0] + 1)  # values, columns, row pointers
    minimum = {}
    for name, (blocks, mixes, stencils) in COUNTS[scheme_name].items():
        flops = mixes * 2.0 * ops.S * C * C * ops.n_owned * B + stencils * 2.0 * nnz * B * C
        minimum[name] = {"bytes": blocks * V + 2 * csr, "flops": flops}
    return kernels, minimum


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="S,M,D", help="comma-separated, of S,M,D,ci")
    parser.add_argument("--scheme", default="parabolic", choices=sorted(COUNTS))
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parse_args(parser)
    sizes = [s for s in args.sizes.split(",") if s]
    unknown = sorted(set(sizes) - set(SIZES))
    if unknown:
        raise pdeopt.OptionError(f"--sizes: unknown {unknown}; known: {sorted(SIZES)}.")
    comm = MPI.COMM_WORLD
    rates = machine(comm, args.repeat)
    bandwidth, gemm = rates["triad_bandwidth_1"], rates["dgemm_rate_1"]
    result = {"machine": rates, "scheme": args.scheme, "basis": "shifts", "sizes": {}}
    rng = np.random.default_rng(0)
    for size in sizes:
        entry = {}
        if comm.rank == 0:  # one core: the other ranks wait
            kernels, minimum = layer_kernels(SIZES[size], args.scheme, rng)
            for name, f in kernels.items():
                seconds = best_time(f, args.repeat)
                m = minimum[name]
                bound = max(m["bytes"] / bandwidth, m["flops"] / gemm)
                entry[name] = {"seconds": seconds, "bound_seconds": bound,
                               "ratio": seconds / bound,
                               "bound_by": "bandwidth" if m["bytes"] / bandwidth
                               >= m["flops"] / gemm else "flops", **m}
        result["sizes"][size] = {**SIZES[size], **comm.bcast(entry)}
    ratios = [k["ratio"] for s in result["sizes"].values() for n, k in s.items()
              if isinstance(k, dict)]
    result["worst_ratio"] = max(ratios) if ratios else None
    write_json(results_dir("bench") / "roofline.json", result, comm)
    if args.json:
        pdeopt.print0(json.dumps(result))
        return
    pdeopt.print0(f"triad {bandwidth / 1e9:.1f} GB/s, DGEMM {gemm / 1e9:.1f} GFlop/s on one "
                  f"core; {rates[f'triad_bandwidth_{comm.size}'] / 1e9:.1f} GB/s, "
                  f"{rates[f'dgemm_rate_{comm.size}'] / 1e9:.1f} GFlop/s on {comm.size}")
    for size, s in result["sizes"].items():
        for name in ("forward", "adjoint", "tlm_soa"):
            k = s[name]
            pdeopt.print0(f"{size:2s} {name:8s} {k['seconds'] * 1e3:8.2f} ms  bound "
                          f"{k['bound_seconds'] * 1e3:7.2f} ms ({k['bound_by']:9s})  "
                          f"ratio {k['ratio']:.2f}")


if __name__ == "__main__":
    main()
