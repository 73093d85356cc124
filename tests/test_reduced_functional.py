"""The reduced functional on arrays: its subsamples and its counts."""

import numpy as np
import pytest

import pdeopt
from problems import digits_batch, make_model, make_problem


def test_subsample_is_the_functional_of_its_samples():
    grid, model, Jhat, theta = make_problem("parabolic")
    sample = Jhat.subsample(0.4, seed=3)
    S = sample.samples
    assert len(S) == 2 and sample.fraction == 0.4 and np.all(np.diff(S) > 0)
    assert np.array_equal(Jhat.subsample(0.4, seed=3).samples, S)
    x, labels = digits_batch(grid)
    direct = pdeopt.ReducedFunctional(model, x[:, S], labels[S], Jhat.regularizer, theta=theta)
    d = np.random.default_rng(0).standard_normal(Jhat.size)
    assert sample.objective(theta) == pytest.approx(direct.objective(theta), rel=1e-12)
    assert np.allclose(sample.gauss_newton_action(theta, d),
                       direct.gauss_newton_action(theta, d), rtol=1e-12, atol=0)
    whole = Jhat.subsample(1.0, seed=0)
    assert whole.objective(theta) == pytest.approx(Jhat.objective(theta), rel=1e-12)
    with pytest.raises(pdeopt.InputError, match="fraction"):
        Jhat.subsample(0.0, seed=0)


def test_field_targets_are_subsampled_on_their_batch_axis():
    grid, model = make_model("parabolic", channels=1, depth=1, readout="field")
    x = np.random.default_rng(0).random((grid.n_owned, 4, 1))
    y = np.random.default_rng(1).random((grid.n_owned, 4, 1))
    Jhat = pdeopt.ReducedFunctional(model, x, y)
    sample = Jhat.subsample(0.5, seed=1)
    direct = pdeopt.ReducedFunctional(model, x[:, sample.samples], y[:, sample.samples])
    assert sample.objective(Jhat.point) == pytest.approx(direct.objective(Jhat.point),
                                                         rel=1e-12)


def test_counts_are_sweeps_and_their_work():
    _, _, Jhat, theta = make_problem("parabolic")
    d = np.random.default_rng(0).standard_normal(Jhat.size)
    Jhat.gradient(theta)
    Jhat.hessian_action(theta, d)
    Jhat.gauss_newton_action(theta, d)
    c = Jhat.counts
    assert (c.forward, c.adjoint, c.tlm, c.soa, c.gauss_newton) == (1, 1, 2, 1, 1)
    assert c.hessian_actions == 2 and c.work == 1 + 1 + 2 * 2
    sample = Jhat.subsample(0.4, seed=0)
    sample.gradient(theta)
    assert sample.counts.work == pytest.approx(0.4 * 2)
    assert (c + sample.counts) - sample.counts == c
