"""The benchmark scripts run at their smallest size and write their results."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_optimizers_benchmark_writes_b5(tmp_path):
    env = {"PDEOPT_RESULTS": str(tmp_path)}
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "optimizers.py"), "--size", "ci",
                    "--seeds", "0", "--json"], check=True, capture_output=True,
                   env={**os.environ, **env})
    out = tmp_path / "optimizers"
    summary = json.loads((out / "summary.json").read_text())
    assert {"target_loss", "tr_newton_cg_over_adam", "tr_newton_cg_over_lbfgs",
            "test_accuracy_mean", "baseline_logistic_accuracy_mean", "runs"} <= set(summary)
    names = {r["optimizer"] for r in summary["runs"]}
    assert {"tr_newton_cg", "adam", "lbfgs", "tao_ntr", "tao_lmvm"} <= names
    for r in summary["runs"]:
        assert set(r) >= {"optimizer", "seed", "seconds_to_target", "iterations", "gradients",
                          "hessian_actions", "final_loss"}
    adam = next(r for r in summary["runs"] if r["optimizer"] == "adam")
    assert adam["seconds_to_target"] is not None  # Adam reaches 1.05 x its own best
    assert (out / "table.md").read_text().startswith("B5")
    assert (out / "loss.png").stat().st_size > 0
