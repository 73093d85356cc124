"""The Verlet (Hamiltonian) layer is a pair of shears: exactly invertible and volume preserving;
its two control sets per layer leave the other schemes' layouts as they were. The derivative
and torch-twin tests run on it through the ``scheme`` fixture."""

import numpy as np
import pytest
from mpi4py import MPI

import pdeopt
from pdeopt.model import LayerControl


@pytest.fixture(scope="module")
def layer():
    """A Verlet scheme on a 4x4 grid (serial), one layer's random controls and a state."""
    grid = pdeopt.PixelGrid(4, comm=MPI.COMM_SELF)
    ops = pdeopt.assemble_operators(grid)
    scheme = pdeopt.VerletScheme(ops, pdeopt.Tanh(), step=0.5)
    rng = np.random.default_rng(0)
    C, B = 2, 1
    th = LayerControl(rng.standard_normal((2, ops.S, C, C)) / np.sqrt(ops.S * C),
                      0.3 * rng.standard_normal((2, C)))
    state = tuple(rng.standard_normal((ops.n_owned, B, C)) for _ in range(2))
    return scheme, th, state


def test_step_runs_backwards(layer):
    r""":math:`z_k = z_{k+1} - c_kF(y_{k+1};\theta_{k,2})`, :math:`y_k = y_{k+1} +
    hF(z_k;\theta_{k,1})` recover the state to round-off, for the nonlinear layer, at the
    start (:math:`c_0 = \tfrac32 h`) and in the interior (:math:`c_1 = h`)."""
    scheme, th, (y, z) = layer
    th1, th2 = (LayerControl(th.weight[i], th.bias[i]) for i in range(2))
    for k, c in ((0, 1.5 * scheme.h), (1, scheme.h)):
        (y1, z1), _ = scheme.step(k, (y, z), th)
        assert np.max(np.abs(y1 - y)) > 1e-2 and np.max(np.abs(z1 - z)) > 1e-2
        z0 = z1 - c * scheme.forcing(y1, th2)[0]
        y0 = y1 + scheme.h * scheme.forcing(z0, th1)[0]
        assert np.max(np.abs(z0 - z)) <= 1e-13 and np.max(np.abs(y0 - y)) <= 1e-13


def test_step_preserves_volume(layer):
    """The Jacobian of one layer in the state, column by column from the tangent-linear
    kernel, has determinant 1 (symplectic maps preserve volume)."""
    scheme, th, state = layer
    _, record = scheme.step(0, state, th)
    shape, n = state[0].shape, state[0].size
    th_dot = LayerControl(np.zeros_like(th.weight), np.zeros_like(th.bias))
    J = np.empty((2 * n, 2 * n))
    for j in range(2 * n):
        e = np.zeros(2 * n)
        e[j] = 1.0
        out, _ = scheme.step_tlm(0, state, record, th, (e[:n].reshape(shape),
                                                        e[n:].reshape(shape)), th_dot)
        J[:, j] = np.concatenate([o.ravel() for o in out])
    assert np.linalg.norm(J - np.eye(2 * n)) > 0.1  # the layer does something
    sign, logdet = np.linalg.slogdet(J)
    assert sign == 1.0 and abs(logdet) <= 1e-10, logdet


def test_two_control_sets_per_layer():
    """Verlet's layer blocks carry a set axis of 2; one-set schemes keep (N, S, C, C)."""
    grid = pdeopt.PixelGrid(8)
    ops = pdeopt.assemble_operators(grid)
    layouts = {name: pdeopt.Network(cls(ops, pdeopt.Tanh(), step=0.5), channels=3,
                                    depth=2).layout for name, cls in pdeopt.SCHEMES.items()}
    for name, layout in layouts.items():
        shapes = dict(zip(layout.names, layout.shapes))
        sets = (2,) if name == "verlet" else ()
        assert shapes["layers.weight"] == (2,) + sets + (ops.S, 3, 3)
        assert shapes["layers.bias"] == (2,) + sets + (3,)
    assert pdeopt.SCHEMES["verlet"].control_sets == 2
    assert all(cls.control_sets == 1 for name, cls in pdeopt.SCHEMES.items() if name != "verlet")
