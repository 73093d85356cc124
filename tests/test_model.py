"""Initial controls and class probabilities of a model."""

import numpy as np

import pdeopt
from problems import digits_batch, make_model


def test_initial_scales():
    grid, model = make_model(channels=4, depth=2)
    base = model.initial_controls(seed=3)
    scaled = model.initial_controls(seed=3, scale=2.5, readout_scale=1.0)
    v, w = model.layout.views(base), model.layout.views(scaled)
    for name in ("opening.weight", "layers.weight"):  # every mixing matrix, the same draw
        assert np.allclose(w[name], 2.5 * v[name], rtol=1e-15, atol=0)
    assert not v["readout.weight"].any() and not v["readout.bias"].any()
    W = w["readout.weight"]  # variance 1 / (features), features = 16 coarse pixels x 4 channels
    assert abs(np.var(W) * W.shape[1] - 1.0) < 0.2
    assert not w["readout.bias"].any()
    # at W = 0 the loss does not see u_N: no gradient in any network control
    x, labels = digits_batch(grid)
    Jhat = pdeopt.ReducedFunctional(model, x, labels, None, theta=base)
    g = Jhat.gradient(base)
    assert not g[:model.network.layout.size].any()
    assert np.linalg.norm(Jhat.gradient(scaled)[:model.network.layout.size]) > 0


def test_probabilities():
    grid, model = make_model(channels=3, depth=2)
    x, labels = digits_batch(grid, n=7)
    theta = model.initial_controls(seed=1, readout_scale=1.0)
    p = model.probabilities(theta, x)
    assert p.shape == (7, 10) and np.allclose(p.sum(axis=1), 1.0, rtol=1e-14)
    assert np.array_equal(np.argmax(p, axis=1), model.predict(theta, x))
