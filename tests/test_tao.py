"""pdeopt's TAO adapter: every stop reported, the iterate kept, Newton methods use the Hessian."""

import pytest

from conftest import make_problem
from pdeopt import TAOSolver


def test_max_iterations_stop_keeps_the_iterate():
    _, _, rf, theta = make_problem("parabolic")
    J0 = rf.objective(theta)
    result = TAOSolver(rf, {"tao_type": "lmvm", "tao_max_it": 4}, monitor=False).solve()
    assert result.reason == "DIVERGED_MAXITS" and not result.converged
    assert result.iterations == 4 and len(result.history) == 5
    assert result.objective < J0
    assert rf.objective(result.theta) == pytest.approx(result.objective, rel=1e-12)


def test_newton_line_search_uses_hessian_actions():
    _, _, rf, theta = make_problem("parabolic")
    result = TAOSolver(rf, {"tao_type": "nls", "tao_max_it": 2}, monitor=False).solve()
    assert rf.counts["soa"] > 0
    assert result.objective < rf.objective(theta)


def test_newton_trust_region_with_the_gauss_newton_matrix():
    _, _, rf, theta = make_problem("parabolic")
    result = TAOSolver(rf, {"tao_type": "ntr", "tao_max_it": 3}, monitor=False,
                       gauss_newton=True).solve()
    assert rf.counts["gauss_newton"] > 0 and rf.counts["soa"] == 0
    assert result.objective < rf.objective(theta)


def test_command_line_prefix_overrides(monkeypatch):
    from petsc4py import PETSc
    _, _, rf, _ = make_problem("parabolic")
    PETSc.Options()["mytao_tao_type"] = "bncg"
    try:
        solver = TAOSolver(rf, {"tao_max_it": 1}, options_prefix="mytao_", monitor=False)
        assert solver.type == "bncg"
    finally:
        PETSc.Options().delValue("mytao_tao_type")


def test_unknown_options_are_reported():
    import pdeopt
    _, _, rf, _ = make_problem("parabolic")
    with pytest.raises(pdeopt.OptionError, match="tao_bogus_tolerance"):
        TAOSolver(rf, {"tao_bogus_tolerance": 1e-3}, monitor=False)
