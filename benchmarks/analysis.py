"""``make reproduce-analysis``: the numerical analysis of the networks, measured.

- the observed order of every scheme as its layers are refined at fixed final time, controls
  sampled from one smooth path θ(t) (N = 4, ..., 256 against N = 1024; Richardson's
  successive differences, :func:`pdeopt.consistency_study`);
- the counter-example: controls drawn independently per layer (no limit at the scheme's
  order);
- the transport demo (``demos/transport/transport.py``, run at its full size): the trained
  hyperbolic network's stability margins inside its bound and the violations past it.

Writes ``results/analysis/summary.json``, ``orders.png`` and ``studies.json``; the transport
demo writes its own plots to ``results/transport/``. Each piece is stored in
``results/analysis/pieces/`` when it ends, so ``--resume`` continues a killed run (a piece
measured with another configuration is measured again).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

import pdeopt
from _runs import parse_args

SCHEMES = ("forward_euler", "parabolic", "imex", "leapfrog", "verlet")
#: The problem every study refines, by ``--size``: grid, channels, batch, final time, depths.
CONFIGS = {"full": {"grid": 16, "channels": 8, "batch": 16, "final_time": 1.0,
                    "depths": [4, 8, 16, 32, 64, 128, 256], "reference": 1024, "seed": 0},
           "ci": {"grid": 4, "channels": 2, "batch": 2, "final_time": 1.0,
                  "depths": [4, 8, 16], "reference": 64, "seed": 0}}
ROOT = Path(__file__).resolve().parents[1]


def network_factory(scheme, config, comm):
    grid = pdeopt.PixelGrid(config["grid"], comm=comm)
    ops = pdeopt.assemble_operators(grid, basis=tuple(pdeopt.GRID_SHIFTS))
    cls, T = pdeopt.SCHEMES[scheme], config["final_time"]

    def network_for(N):
        return pdeopt.Network(cls(ops, pdeopt.Tanh(), step=T / N), channels=config["channels"],
                              depth=N)
    return grid, network_for


def study(scheme, controls, config, comm):
    """One consistency study: ``controls`` is ``smooth`` or ``independent``."""
    grid, network_for = network_factory(scheme, config, comm)
    rng = np.random.default_rng(config["seed"])
    images = rng.standard_normal((config["batch"], config["grid"], config["grid"]))
    x = grid.to_field(images)[:, :, None]
    template, T = network_for(4), config["final_time"]
    if controls == "smooth":
        path = pdeopt.smooth_path(template, rng, final_time=T)
    else:
        path = pdeopt.independent_path(template, rng, config["reference"], final_time=T)
    return pdeopt.consistency_study(network_for, path, x, depths=config["depths"],
                                    reference=config["reference"])


def piece(pieces, name, config, compute, resume, comm, seconds):
    """The stored result of piece ``name`` if ``resume`` and it was measured with ``config``;
    otherwise ``compute()``, stored atomically. ``seconds[name]``: what it took to measure."""
    path = pieces / f"{name}.json"
    if resume and path.exists():
        try:
            stored = json.loads(path.read_text())
        except json.JSONDecodeError:
            stored = None
        if stored is not None and stored.get("config") == config:
            pdeopt.print0(f"[analysis] {name}: stored", comm=comm)
            seconds[name] = stored["seconds"]
            return stored["result"]
    t0 = time.perf_counter()
    result = compute()
    seconds[name] = time.perf_counter() - t0
    pdeopt.print0(f"[analysis] {name}: {seconds[name]:.1f} s", comm=comm)
    pdeopt.write_json(path, {"config": config, "result": result, "seconds": seconds[name]},
                      comm)
    return result


def transport(size):
    """Run the transport demo at ``size`` in a fresh process; its summary."""
    out = pdeopt.results_dir("transport") / "summary.json"
    env = dict(os.environ, PDEOPT_DEMO_SIZE=size)
    subprocess.run([sys.executable, str(ROOT / "demos" / "transport" / "transport.py")],
                   env=env, check=True)
    return json.loads(out.read_text())


def plot(studies, config, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for (scheme, controls), s in studies.items():
        N = np.array(s["depths"][:-1], dtype=float)
        style = "-o" if controls == "smooth" else "--x"
        ax.loglog(N, s["differences"], style, ms=4,
                  label=f"{scheme}{'' if controls == 'smooth' else ' (i.i.d. controls)'}: "
                        f"p = {s['order']:.2f}")
    N = np.array(config["depths"][:-1], dtype=float)
    for p in (1, 2):
        ax.loglog(N, 0.5 * (N / N[0]) ** -p, ":k", lw=0.8)
        ax.annotate(f"$h^{p}$", (N[-1], 0.5 * (N[-1] / N[0]) ** -p), fontsize=8)
    ax.set_xlabel("layers N (h = T/N)")
    ax.set_ylabel(r"$\|u_N - u_{2N}\|_M / \|u_{ref}\|_M$")
    ax.set_title("observed order of the networks' output under refinement")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resume", action="store_true",
                        help="re-use the pieces already stored in results/analysis/pieces")
    parser.add_argument("--size", default="full", choices=sorted(CONFIGS),
                        help="the studies' problem (ci: seconds)")
    parser.add_argument("--transport-size", default="full", choices=("full", "ci", "skip"),
                        help="the size the transport demo runs at (skip: not run)")
    args = parse_args(parser, argv)
    comm = MPI.COMM_WORLD
    if comm.size > 1:
        raise pdeopt.InputError("benchmarks/analysis.py runs on one process (it starts the "
                                "transport demo in its own): run it without mpiexec.")
    config = CONFIGS[args.size]
    t0 = time.perf_counter()
    out = pdeopt.results_dir("analysis")
    pieces = out / "pieces"
    studies, seconds = {}, {}
    for scheme in SCHEMES:
        studies[scheme, "smooth"] = piece(pieces, f"{scheme}-smooth", config,
                                          lambda: study(scheme, "smooth", config, comm).as_dict(),
                                          args.resume, comm, seconds)
    for scheme in ("parabolic", "leapfrog"):
        studies[scheme, "independent"] = piece(
            pieces, f"{scheme}-independent", config,
            lambda: study(scheme, "independent", config, comm).as_dict(), args.resume, comm,
            seconds)
    for (scheme, controls), s in studies.items():
        pdeopt.print0(f"{scheme:>14} {controls:>11}: order {s['order']:.3f} "
                      f"(expected {s['expected']}), consistent {s['consistent']}", comm=comm)
    if comm.rank == 0:
        plot(studies, config, out / "orders.png")
    demo = {"margin_min": None, "violations_past_bound": None, "violations_within_bound": None}
    if args.transport_size != "skip":
        demo = piece(pieces, "transport", {"size": args.transport_size},
                     lambda: transport(args.transport_size), args.resume, comm, seconds)
    summary = {
        "observed_order": {s: studies[s, "smooth"]["order"] for s in SCHEMES},
        "independent_controls_order": {s: studies[s, "independent"]["order"]
                                       for s in ("parabolic", "leapfrog")},
        "stability": {"trained_demo_margin_min": demo["margin_min"],
                      "violations_past_bound": demo["violations_past_bound"],
                      "violations_within_bound": demo["violations_within_bound"]},
        "config": config, "transport_size": args.transport_size,
        # the pieces' own times (a resumed run's earlier pieces included), and this run's
        "wall_seconds": sum(seconds.values()), "piece_seconds": seconds,
        "this_run_seconds": time.perf_counter() - t0}
    pdeopt.write_json(out / "studies.json",
                      {f"{k[0]}-{k[1]}": v for k, v in studies.items()}, comm)
    pdeopt.write_json(out / "summary.json", summary, comm)
    pdeopt.print0(json.dumps(summary, indent=1), comm=comm)


if __name__ == "__main__":
    main()
