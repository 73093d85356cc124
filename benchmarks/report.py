"""Write docs/benchmarks.md from the results on this machine (``make docs``).

    python benchmarks/report.py [--output docs/benchmarks.md]

Everything above the marker line of the existing document (the recorded measurements) is kept
as it is; everything below it is rewritten from ``results/`` (``$PDEOPT_RESULTS``): the demos'
summaries, ``derivative_cost_{S,M}.json`` (B1t, B1, B2, B4), the optimizers' summary (B5), the
parallel summary (B7) and the digits study's runs. A result that is not there is named with
the command that produces it; no figure is written that is not in a results file.
"""

import argparse
import json
import math
from pathlib import Path

from pdeopt.parallel import results_dir

from _runs import parse_args
from digits_study import DEMO
from summary import table as b5_table

ROOT = Path(__file__).resolve().parents[1]
MARKER = ("<!-- Everything below this line is written by `make docs` (benchmarks/report.py) "
          "from results/; edit above it only. -->")
HEAD = "# Benchmarks\n\n"
#: DESIGN.md §7's targets.
TARGETS = {"B1t": "≤ 1.1", "B1": "≤ 3.0", "B2": "≤ 2.5", "B4": "≤ 1.0", "B5": "≤ 0.5",
           "B7": "≥ 0.9", "B8": "≤ 80 for the best backend"}
DERIVATIVE_COST = (("B1t", "taped forward / forward", "taped_forward_over_forward"),
                   ("B1", "(taped forward + adjoint) / forward", "gradient_over_forward"),
                   ("B2", "(tangent-linear + second-order adjoint) / adjoint",
                    "hessian_action_over_gradient"),
                   ("B4", "ResNet layer / torch conv2d + tanh", "layer_over_torch_conv2d"))


def _load(path):
    """The JSON value in ``path``, or ``None`` if there is none."""
    return json.loads(path.read_text()) if path.exists() else None


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _missing(what, command, note=""):
    return f"*Not in results/:* {what}; `{command}` writes it{note}.\n"


def _f(x, digits=3):
    return "—" if x is None else (f"{x:.{digits}f}" if math.isfinite(x) else str(x))


def demo_section():
    out = ["### The digits demo\n"]
    s = _load(results_dir("demo") / "summary.json")
    if s is None:
        return out + [_missing("results/demo/summary.json", "make demo")]
    history = _load(results_dir("demo") / "history.json") or {}
    counts = history.get("counts", {})
    starts = s["starts"]
    out.append(
        f"`demos/digits/digits.py` ({s['scheme']} network, {s['solver']}, {len(starts)} starts, "
        f"{s['iterations']} iterations in all"
        + (f", {counts['hessian_actions']} Gauss–Newton actions" if "hessian_actions" in counts
           else "")
        + f", {s['wall_seconds']:.0f} s after the imports): test accuracy "
        f"**{s['test_accuracy']:.3f}** of the networks voting (validation "
        f"{s['validation_accuracy']:.3f}; the networks alone "
        + ", ".join(f"{r['test_accuracy']:.3f}" for r in starts)
        + f"; training loss of the vote {s['train_loss']:.3f}) against "
        f"**{s['baseline_logistic_accuracy']:.3f}** for logistic regression on the pixels.\n")
    out += ["| start (seed) | iterations | stop | J | validation | test |",
            "|---|---|---|---|---|---|"]
    out += [f"| {r['seed']} | {r['iterations']} | {r['reason']} | {r['objective']:.4f} | "
            f"{r['validation_accuracy']:.3f} | {r['test_accuracy']:.3f} |" for r in starts]
    return out + [""]


def surrogate_section():
    out = ["### The surrogate demo\n"]
    s = _load(results_dir("surrogate") / "summary.json")
    if s is None:
        return out + [_missing("results/surrogate/summary.json",
                               "python demos/surrogate/surrogate.py")]
    out += ["`python demos/surrogate/surrogate.py`:\n",
            "| controls | iterations | training loss | test relative error |", "|---|---|---|---|"]
    for name, label in (("full", "network and readout weights"),
                        ("projected", "network only (variable projection)")):
        r = s[name]
        out.append(f"| {label} | {r['iterations']} | {r['train_loss']:.2e} | "
                   f"{r['test_relative_error']:.2e} |")
    return out + [""]


def derivative_cost_section():
    out = ["### Derivative cost: B1t, B1, B2, B4\n"]
    runs = {size: _load(results_dir("bench") / f"derivative_cost_{size}.json")
            for size in ("S", "M")}
    present = {size: r for size, r in runs.items() if r is not None}
    if not present:
        return out + [_missing("results/bench/derivative_cost_{S,M}.json", "make bench")]
    conditions = "; ".join(
        f"{size}: {r['n']}×{r['n']} grid, {r['channels']} channels, {r['depth']} layers, "
        f"batch {r['batch']}, {r['scheme']}, {r['ranks']} rank(s), torch with "
        f"{r['torch_threads']} thread(s)" for size, r in present.items())
    out += [f"`python benchmarks/derivative_cost.py --size S|M --json` ({conditions}):\n",
            "| ratio | S | M | target |", "|---|---|---|---|"]
    for name, label, key in DERIVATIVE_COST:
        cells = [_f(runs[size][key], 2) if runs[size] else "—" for size in ("S", "M")]
        out.append(f"| {name} {label} | {cells[0]} | {cells[1]} | {TARGETS[name]} |")
    for size in runs:
        if runs[size] is None:
            out.append("\n" + _missing(f"size {size}",
                                       f"python benchmarks/derivative_cost.py --size {size} "
                                       f"--json"))
    return out + [""]


def optimizers_section():
    out = ["### Time to a target loss: B5\n"]
    s = _load(results_dir("optimizers") / "summary.json")
    if s is None:
        return out + [_missing("results/optimizers/summary.json",
                               "make reproduce-optimizers",
                               " (`B5_SIZE=small` for a shorter run)")]
    out.append(f"`python benchmarks/optimizers.py --size {s['size']} --seeds "
               f"{' '.join(map(str, s['seeds']))}` (target {TARGETS['B5']} at the full size; "
               f"seconds to the target, work in forward+adjoint equivalents):\n")
    return out + [b5_table(s)]


def parallel_section():
    out = ["### Parallel efficiency: B7\n"]
    s = _load(results_dir("parallel") / "summary.json")
    if s is None:
        return out + [_missing("results/parallel/summary.json", "make reproduce-parallel")]
    out.append(f"`mpiexec -n 2 python benchmarks/parallel.py --size {s['size']}` (a gradient on a "
               f"{s['n']}×{s['n']} grid, {s['channels']} channels, {s['depth']} layers, batch "
               f"{s['batch']}): speed-up {s['speedup_spatial']:.2f} with the mesh on 2 ranks, "
               f"{s['speedup_ensemble']:.2f} with the batch on 2 ensemble members, against a "
               f"2-process triad bandwidth gain of {s['bandwidth_gain']:.2f}: efficiency "
               f"**{s['efficiency']:.2f}** (target {TARGETS['B7']}).\n")
    return out


def analysis_section():
    out = ["### Analysis: observed orders and the transport demo's margins\n"]
    s = _load(results_dir("analysis") / "summary.json")
    if s is None:
        return out + [_missing("results/analysis/summary.json", "make reproduce-analysis")]
    c = s["config"]
    out += [f"`make reproduce-analysis` (N = {c['depths'][0]}, …, {c['depths'][-1]} against "
            f"N = {c['reference']}, a {c['grid']}×{c['grid']} grid, {c['channels']} channels, "
            f"{c['batch']} inputs; {s['wall_seconds']:.0f} s):\n",
            "| scheme | observed order |", "|---|---|"]
    out += [f"| {k} | {_f(v)} |" for k, v in s["observed_order"].items()]
    out += [f"| {k}, i.i.d. controls | {_f(v)} |"
            for k, v in s.get("independent_controls_order", {}).items()]
    st = s["stability"]
    out += ["", f"Transport demo: smallest margin of the trained network "
                f"{_f(st['trained_demo_margin_min'])}, layers past their bound "
                f"{st['violations_within_bound']} at its step and "
                f"{st['violations_past_bound']} at 1.5× the smallest bound.\n"]
    return out


def calibration_section():
    out = ["### Calibration: B8\n"]
    s = _load(results_dir("calibration") / "summary.json")
    if s is None:
        return out + [_missing("results/calibration/summary.json", "make reproduce-calibration")]
    out += [f"`make reproduce-calibration` (size {s['size']}, {s['budget_work_units']:g} work "
            f"units per evaluation): grid best {_f(s['grid_best'], 4)} over "
            f"{s['grid_points']} points ({s['grid_feasible']} feasible); target "
            f"{TARGETS['B8']}.\n",
            "| backend | evaluations | to within 1 % of the grid's best | best found |",
            "|---|---|---|---|"]
    for k, n in s["evaluations"].items():
        hit = s["evaluations_to_within_1pct"][k]
        out.append(f"| {k} | {n} | {'never' if hit is None else hit} | "
                   f"{_f(s['best_found'][k], 4)} |")
    return out + [""]


def digits_study_section():
    out = ["### The digits study\n"]
    path = results_dir("digits_study")
    runs, votes = _lines(path / "runs.jsonl"), _lines(path / "votes.jsonl")
    if not runs:
        return out + [_missing("results/digits_study/runs.jsonl",
                               "python benchmarks/digits_study.py --study coordinates",
                               " (or `--study settings`)")]
    out += ["`python benchmarks/digits_study.py` (one start each, in the order run; the "
            "settings that differ from `digits_study.DEMO`):\n",
            "| settings | validation | test | training loss |", "|---|---|---|---|"]
    for r in runs:
        out.append(f"| {_changes(r)} | {r['validation_accuracy']:.3f} | "
                   f"{r['test_accuracy']:.3f} | {r['train_loss']:.3g} |")
    if votes:
        out += ["", "Starts that differ only in the seed, voting:\n",
                "| settings | seeds | validation | test |", "|---|---|---|---|"]
        for v in votes:
            out.append(f"| {_changes(v['vote'])} | {', '.join(map(str, v['seeds']))} | "
                       f"{v['validation_accuracy']:.3f} | {v['test_accuracy']:.3f} |")
    return out + [""]


def _changes(settings):
    """The settings that differ from the study's defaults, as ``key=value``."""
    return ", ".join(f"{k}={settings[k]}" for k in DEMO
                     if k in settings and settings[k] != DEMO[k]) or "the defaults"


def document(head):
    """The document: ``head`` (up to and with the marker) and the sections from results/."""
    sections = (demo_section, surrogate_section, derivative_cost_section, optimizers_section,
                parallel_section, analysis_section, calibration_section, digits_study_section)
    body = "\n".join("\n".join(section()) for section in sections)
    return f"{head}\n\n## Measured on this machine (results/)\n\n{body}".rstrip() + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parse_args(parser)
    text = args.output.read_text() if args.output.exists() else HEAD + MARKER
    if MARKER not in text:
        text = text.rstrip() + "\n\n" + MARKER
    head = text[:text.index(MARKER) + len(MARKER)]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(document(head))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
