"""pyadjoint Blocks for the network sweep, the readout loss and the regulariser.

Each Block calls the exact derivative kernels of :mod:`pdeopt.model`; one Block covers the
whole network sweep, so taping costs one Block per evaluation whatever the depth.
"""

import numpy as np
from pyadjoint import AdjFloat
from pyadjoint.block import Block

from pdeopt.errors import PdeoptError
from pdeopt.problem.control_array import as_array

__all__ = ["GaussNewtonBlock", "NetworkBlock", "ReadoutBlock", "RegularizerBlock"]


class GaussNewtonBlock(Block):
    """A Block whose Hessian action has a Gauss–Newton mode.

    :attr:`gauss_newton` is set (on the instance) only for the duration of
    :meth:`~pdeopt.problem.reduced_functional.ReducedFunctional.gauss_newton_action`.
    """

    gauss_newton = False


class NetworkBlock(GaussNewtonBlock):
    r"""The network sweep :math:`\theta \mapsto u_N(\theta; x)` for fixed input ``x``.

    It stores the forward trajectory of the last evaluation, the tangent-linear trajectory of
    the last TLM sweep and the adjoints of the last adjoint sweep: a Hessian action reuses the
    forward and adjoint sweeps and runs only the tangent-linear and second-order adjoint ones.
    While :attr:`gauss_newton` is set, the reverse sweep of a Hessian action drops the terms
    weighted by the first-order adjoint: :math:`J^T\mu_N`, one adjoint sweep.
    """

    def __init__(self, network, x, theta, trajectory):
        super().__init__()
        self.network, self.x = network, x
        self.n = network.layout.size
        self.add_dependency(theta)
        self.trajectory = trajectory
        self.tlm_trajectory = self.adjoints = None

    def __str__(self):
        return f"NetworkBlock({self.network.scheme.name}, depth={self.network.N})"

    def _theta(self, inputs):
        return as_array(inputs[0])[:self.n]

    def _full(self, part):
        out = np.zeros(self.get_dependencies()[0].output.array.size)
        out[:self.n] = part
        return out

    def recompute_component(self, inputs, block_variable, idx, prepared):
        uN, self.trajectory = self.network.forward(self._theta(inputs), self.x)
        self.tlm_trajectory = self.adjoints = None
        return uN

    def prepare_evaluate_adj(self, inputs, adj_inputs, relevant_dependencies):
        grad, self.adjoints = self.network.adjoint(self._theta(inputs), self.trajectory,
                                                   adj_inputs[0])
        return self._full(grad)

    def evaluate_adj_component(self, inputs, adj_inputs, block_variable, idx, prepared=None):
        return prepared

    def prepare_evaluate_tlm(self, inputs, tlm_inputs, relevant_outputs):
        uN_dot, self.tlm_trajectory = self.network.tlm(
            self._theta(inputs), self.trajectory, as_array(tlm_inputs[0])[:self.n])
        return uN_dot

    def evaluate_tlm_component(self, inputs, tlm_inputs, block_variable, idx, prepared=None):
        return prepared

    def prepare_evaluate_hessian(self, inputs, hessian_inputs, adj_inputs, relevant_dependencies):
        mu_N = hessian_inputs[0]
        if self.gauss_newton:
            return self._full(self.network.adjoint(self._theta(inputs), self.trajectory, mu_N)[0])
        if self.adjoints is None or self.tlm_trajectory is None:
            raise PdeoptError("a Hessian action needs the adjoint and tangent-linear sweeps at "
                              "the current controls: call derivative() before hessian().")
        theta_dot = as_array(self.get_dependencies()[0].tlm_value)[:self.n]
        return self._full(self.network.soa(self._theta(inputs), self.trajectory,
                                           self.tlm_trajectory, self.adjoints, theta_dot, mu_N))

    def evaluate_hessian_component(self, inputs, hessian_inputs, adj_inputs, block_variable, idx,
                                   relevant_dependencies, prepared=None):
        return prepared


class ReadoutBlock(GaussNewtonBlock):
    r"""The loss :math:`J(u_N, \theta)` of a readout (classifier or field misfit).

    While :attr:`gauss_newton` is set, a Hessian action uses the readout's Gauss-Newton part.
    """

    def __init__(self, readout, layout, uN, theta, target, record):
        super().__init__()
        self.readout, self.layout, self.target, self.record = readout, layout, target, record
        self.offset = layout.size - readout.layout.size
        self.add_dependency(uN)
        self.add_dependency(theta)

    def __str__(self):
        return f"ReadoutBlock({type(self.readout).__name__})"

    def _views(self, inputs):
        return self.layout.views(as_array(inputs[1]))

    def _full(self, part):
        out = np.zeros(self.layout.size)
        out[self.offset:] = part
        return out

    def recompute_component(self, inputs, block_variable, idx, prepared):
        J, self.record = self.readout.value(inputs[0].array, self._views(inputs), self.target)
        return AdjFloat(J)

    def prepare_evaluate_adj(self, inputs, adj_inputs, relevant_dependencies):
        u_bar, th_bar = self.readout.adjoint(inputs[0].array, self.record, self._views(inputs),
                                             self.target, adj=float(adj_inputs[0]))
        return u_bar, self._full(th_bar)

    def evaluate_adj_component(self, inputs, adj_inputs, block_variable, idx, prepared=None):
        return prepared[idx]

    def _directions(self, u, u_dot, th_dot):
        """The tangent directions, zero where pyadjoint passes none."""
        u_dot = np.zeros_like(u) if u_dot is None else u_dot
        th_dot = as_array(th_dot)
        return u_dot, self.layout.views(np.zeros(self.layout.size) if th_dot is None else th_dot)

    def prepare_evaluate_tlm(self, inputs, tlm_inputs, relevant_outputs):
        u = inputs[0].array
        u_dot, vd = self._directions(u, *tlm_inputs)
        return AdjFloat(self.readout.tlm(u, self.record, self._views(inputs), self.target,
                                         u_dot, vd))

    def evaluate_tlm_component(self, inputs, tlm_inputs, block_variable, idx, prepared=None):
        return prepared

    def prepare_evaluate_hessian(self, inputs, hessian_inputs, adj_inputs, relevant_dependencies):
        u = inputs[0].array
        u_dot, vd = self._directions(u, *(d.tlm_value for d in self.get_dependencies()))
        u_hat, th_hat = self.readout.soa(u, self.record, self._views(inputs), self.target, u_dot,
                                         vd, adj=float(adj_inputs[0]),
                                         hess=float(hessian_inputs[0]),
                                         gauss_newton=self.gauss_newton)
        return u_hat, self._full(th_hat)

    def evaluate_hessian_component(self, inputs, hessian_inputs, adj_inputs, block_variable, idx,
                                   relevant_dependencies, prepared=None):
        return prepared[idx]


class RegularizerBlock(Block):
    r"""The quadratic regulariser :math:`R(\theta) = \tfrac12\theta^T H_R \theta`."""

    def __init__(self, regularizer, theta):
        super().__init__()
        self.regularizer = regularizer
        self.add_dependency(theta)

    def __str__(self):
        return "RegularizerBlock"

    def recompute_component(self, inputs, block_variable, idx, prepared):
        return AdjFloat(self.regularizer.value(as_array(inputs[0])))

    def evaluate_adj_component(self, inputs, adj_inputs, block_variable, idx, prepared=None):
        return float(adj_inputs[0]) * self.regularizer.gradient(as_array(inputs[0]))

    def evaluate_tlm_component(self, inputs, tlm_inputs, block_variable, idx, prepared=None):
        return AdjFloat(np.dot(self.regularizer.gradient(as_array(inputs[0])),
                               as_array(tlm_inputs[0])))

    def evaluate_hessian_component(self, inputs, hessian_inputs, adj_inputs, block_variable, idx,
                                   relevant_dependencies, prepared=None):
        theta_dot = as_array(block_variable.tlm_value)
        out = float(adj_inputs[0]) * self.regularizer.hessian_action(theta_dot)
        out += float(hessian_inputs[0]) * self.regularizer.gradient(as_array(inputs[0]))
        return out
