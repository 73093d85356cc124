"""Cost of derivatives relative to the forward run (DESIGN.md §7: B1, B1t, B2, B4).

    python benchmarks/derivative_cost.py --size S|M [--json] [--repeat R]

(``--size ci`` is the tests' few-second run.)

Ratios are taken side by side in one run: every repetition times each quantity in turn, and
the ratios are those of the medians. Times exclude kernel compilation (one warm-up first).

- B1t  taped forward / untaped forward
- B1   (taped forward + adjoint sweep) / untaped forward
- B2   (tangent-linear + second-order adjoint sweeps) / adjoint sweep, no forward re-run;
       beside it the Gauss-Newton action (tangent-linear + adjoint sweeps) / adjoint sweep
- B4   one forward layer (ResNet step) / torch conv2d + tanh, same batch, channels, grid

Writes results/bench/derivative_cost_<size>.json (rank 0).
"""

import argparse
import json
import os
import time

import numpy as np
import torch
from mpi4py import MPI
from pyadjoint import Tape
from pyadjoint.tape import continue_annotation, set_working_tape, stop_annotating

import pdeopt
from pdeopt.model.control import LayerControl
from pdeopt.parallel import results_dir, write_json
from pdeopt.problem import ControlArray, training_loss

from _runs import parse_args
from tasks import classifier, random_batch, regularizer

SIZES = {"ci": dict(n=16, channels=2, depth=2, batch=2),
         "S": dict(n=64, channels=8, depth=16, batch=16),
         "M": dict(n=256, channels=8, depth=16, batch=4)}


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="S")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parse_args(parser)
    cfg = SIZES[args.size]
    comm = MPI.COMM_WORLD
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    grid = pdeopt.PixelGrid(cfg["n"], comm=comm)
    C, N, B = cfg["channels"], cfg["depth"], cfg["batch"]
    # the digits network (parabolic, difference coordinates, T = 1) on random images
    model = classifier(grid, C=C, N=N, basis="differences")
    ops, scheme = model.network.ops, model.network.scheme
    rng = np.random.default_rng(0)
    x, labels = random_batch(grid, B, rng)
    theta = model.initial_controls(seed=0)
    reg = regularizer(model)
    Jhat = pdeopt.ReducedFunctional(model, x, labels, reg, theta=theta)
    direction = rng.standard_normal(Jhat.size)
    views = model.layout.views(theta)

    def untaped():
        with stop_annotating():
            uN = model.output(theta, x)
            model.readout.value(uN, views, labels)
            reg.value(theta)

    def taped():
        with set_working_tape(Tape()):
            continue_annotation()
            training_loss(model, ControlArray(theta, comm=comm), x, labels, reg)

    def adjoint():
        Jhat.derivative()

    def second_order():
        Jhat.hessian(ControlArray(direction, comm=comm))

    def gauss_newton():
        Jhat.gauss_newton_action(theta, direction)

    # one layer of the ResNet scheme against torch conv2d + tanh on the same block
    resnet = pdeopt.ForwardEulerScheme(ops, pdeopt.Tanh(), step=1.0 / N)
    u = rng.standard_normal((ops.n_owned, B, C))
    th = LayerControl(rng.standard_normal((ops.S, C, C)) / 9, np.zeros(C))
    conv = torch.nn.Conv2d(C, C, 3, padding=1, dtype=torch.float64)
    timg = torch.randn(B, C, grid.ny, grid.nx, dtype=torch.float64)

    def layer():
        resnet.step(0, (u,), th)

    def torch_layer():
        with torch.no_grad():
            torch.tanh(conv(timg))

    tasks = {"untaped_forward": untaped, "taped_forward": taped, "adjoint": adjoint,
             "tlm_soa": second_order, "gauss_newton": gauss_newton, "layer": layer,
             "torch_conv2d_tanh": torch_layer}
    Jhat.objective(theta)
    for f in tasks.values():  # warm-up: kernel compilation, caches
        f()
    times = {k: [] for k in tasks}
    for _ in range(args.repeat):
        Jhat(ControlArray(theta, comm=comm))  # a taped state for adjoint and Hessian
        for k in ("untaped_forward", "taped_forward", "adjoint", "tlm_soa", "gauss_newton",
                  "layer", "torch_conv2d_tanh"):
            times[k].append(comm.allreduce(timed(tasks[k]), op=MPI.MAX))
    med = {k: float(np.median(v)) for k, v in times.items()}
    result = {
        "size": args.size, "scheme": scheme.name, **cfg, "ranks": comm.size,
        "taped_forward_over_forward": med["taped_forward"] / med["untaped_forward"],
        "gradient_over_forward": (med["taped_forward"] + med["adjoint"]) / med["untaped_forward"],
        "hessian_action_over_gradient": med["tlm_soa"] / med["adjoint"],
        "gauss_newton_action_over_gradient": med["gauss_newton"] / med["adjoint"],
        "layer_over_torch_conv2d": med["layer"] / med["torch_conv2d_tanh"],
        "median_seconds": med, "torch_threads": torch.get_num_threads()}
    write_json(results_dir("bench") / f"derivative_cost_{args.size}.json", result, comm)
    if args.json:
        pdeopt.print0(json.dumps(result))
    else:
        for k in ("taped_forward_over_forward", "gradient_over_forward",
                  "hessian_action_over_gradient", "gauss_newton_action_over_gradient",
                  "layer_over_torch_conv2d"):
            pdeopt.print0(f"{k:32s} {result[k]:.3f}")


if __name__ == "__main__":
    main()
