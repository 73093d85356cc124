"""The README's example is the package docstring's, and it runs."""

import json
import re
import runpy
from pathlib import Path

import pdeopt

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The README's first Python block."""
    text = (ROOT / "README.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def docstring_example() -> str:
    """The literal block after "Start here" in ``pdeopt.__doc__``, dedented."""
    block = pdeopt.__doc__.split("::\n", 1)[1]
    lines = [line[4:] for line in block.splitlines()]
    return "\n".join(lines).strip() + "\n"


def test_the_readme_example_is_the_package_docstring():
    assert readme_example() == docstring_example()


def test_every_public_name_is_exported():
    assert sorted(pdeopt.__all__) == sorted(set(pdeopt.__all__))
    assert all(hasattr(pdeopt, name) for name in pdeopt.__all__)


def test_the_readme_example_runs(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "example.py"
    script.write_text(readme_example())
    runpy.run_path(str(script), run_name="__main__")
    out = capfd.readouterr().out.splitlines()
    assert float(out[0]) > 2.9  # the Taylor rate of the Hessian
    assert (tmp_path / "ckpt" / "state-000020.json").exists()
    history = json.loads((tmp_path / "history.json").read_text())["history"]
    reason, objective, work = out[-1].split()
    assert float(objective) == history[-1]["objective"] < 0.5 * history[0]["objective"]
    assert reason == "DIVERGED_MAXITS" and float(work) > 0
