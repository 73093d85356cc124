"""pdeopt's TAO adapter: every stop reported, the iterate kept, Newton methods use the Hessian,
and the same result type and counts as the trust region."""

import pytest

import pdeopt
from pdeopt import TAOSolver, TerminationReason
from problems import make_problem


def test_max_iterations_stop_keeps_the_iterate():
    _, _, Jhat, theta = make_problem("parabolic")
    J0 = Jhat.objective(theta)
    result = TAOSolver(Jhat, solver_parameters={"tao_type": "lmvm", "tao_max_it": 4}).solve()
    assert result.reason is TerminationReason.DIVERGED_MAXITS and not result.converged
    assert result.iterations == 4 and len(result.history) == 5
    assert result.objective < J0
    assert Jhat.objective(result.theta) == pytest.approx(result.objective, rel=1e-12)
    # an adjoint per evaluation, a forward per evaluation but the first (at the taped point)
    assert result.counts.adjoint == result.counts.forward + 1 >= 5
    assert result.history[-1]["counts"] == result.counts.as_dict()


def test_newton_line_search_uses_hessian_actions():
    _, _, Jhat, theta = make_problem("parabolic")
    result = TAOSolver(Jhat, solver_parameters={"tao_type": "nls", "tao_max_it": 2}).solve()
    assert result.counts.soa > 0 and result.counts.soa == Jhat.counts.soa
    assert result.objective < Jhat.objective(theta)


def test_newton_trust_region_with_the_gauss_newton_matrix():
    _, _, Jhat, theta = make_problem("parabolic")
    result = TAOSolver(Jhat, solver_parameters={"tao_type": "ntr", "tao_max_it": 3},
                       gauss_newton=True).solve()
    assert result.counts.gauss_newton > 0 and result.counts.soa == 0
    assert result.objective < Jhat.objective(theta)


def test_command_line_prefix_overrides(petsc_option):
    _, _, Jhat, _ = make_problem("parabolic")
    petsc_option("mytao_tao_type", "bncg")
    solver = TAOSolver(Jhat, solver_parameters={"tao_max_it": 1}, options_prefix="mytao_")
    assert solver.type == "bncg"


def test_unknown_options_are_reported():
    _, _, Jhat, _ = make_problem("parabolic")
    with pytest.raises(pdeopt.OptionError, match="tao_bogus_tolerance"):
        TAOSolver(Jhat, solver_parameters={"tao_bogus_tolerance": 1e-3})


def test_every_tao_reason_has_a_name():
    from petsc4py import PETSc
    for name, code in vars(PETSc.TAO.ConvergedReason).items():
        if isinstance(code, int) and code != 0:  # 0: still iterating
            reason = TerminationReason.from_tao(code)
            assert reason.converged is (code > 0)
