"""The hyperbolic leapfrog scheme, started at second order."""

import numpy as np

from pdeopt.model.activation import Activation
from pdeopt.model.control import LayerControl
from pdeopt.model.forcing import SymmetricForcing
from pdeopt.model.operators import OperatorSet
from pdeopt.model.schemes.scheme import Scheme

__all__ = ["LeapfrogScheme"]


class LeapfrogScheme(Scheme):
    r"""Hyperbolic network: :math:`u_{k+1} = 2u_k - u_{k-1} - h^2 K_k^*\sigma(K_k u_k + b_k)`.

    The state is the pair :math:`(u_{k-1}, u_k)`. The first step is the second-order start
    :math:`u_1 = u_0 - \tfrac12 h^2 K_0^*\sigma(K_0u_0 + b_0)`, which is the general step with
    :math:`u_{-1} = u_0` and the force halved, so every layer runs one kernel:

    .. math:: (p, u) \mapsto (u,\; 2u - p + c_k h^2 F(u;\theta_k)),
       \qquad c_0 = \tfrac12,\ c_k = 1.

    Adjoint: :math:`\bar p = -\lambda_b`, :math:`\bar u = \lambda_a + 2\lambda_b +
    c_k h^2 F_u^T\lambda_b`, :math:`\bar\theta_k = c_k h^2 F_\theta^T \lambda_b`.
    """

    name = "leapfrog"
    order = 2

    def __init__(self, operators: OperatorSet, activation: Activation, step: float):
        super().__init__(SymmetricForcing(operators, activation, owner=type(self).__name__), step)

    def _c(self, k):
        return (0.5 if k == 0 else 1.0) * self.h * self.h

    def start(self, u0: np.ndarray) -> tuple:
        return (u0, u0)

    def start_adjoint(self, lam: tuple) -> np.ndarray:
        return lam[0] + lam[1]

    def step(self, k: int, state: tuple, th: LayerControl) -> tuple[tuple, np.ndarray]:
        p, u = state
        F, z = self.forcing(u, th)
        F *= self._c(k)
        F += 2.0 * u - p
        return (u, F), z

    def step_tlm(self, k: int, state: tuple, record: np.ndarray, th: LayerControl,
                 state_dot: tuple, th_dot: LayerControl) -> tuple[tuple, np.ndarray]:
        p_dot, u_dot = state_dot
        F_dot, z_dot = self.forcing.tlm(state[1], record, th, u_dot, th_dot)
        F_dot *= self._c(k)
        F_dot += 2.0 * u_dot - p_dot
        return (u_dot, F_dot), z_dot

    def step_adjoint(self, k: int, state: tuple, record: np.ndarray, th: LayerControl,
                     lam_next: tuple) -> tuple[tuple, LayerControl]:
        lam_a, lam_b = lam_next
        u_bar, th_bar = self.forcing.adjoint(state[1], record, th, self._c(k) * lam_b)
        u_bar += lam_a + 2.0 * lam_b
        return (-lam_b, u_bar), th_bar

    def step_soa(self, k: int, state: tuple, record: np.ndarray, th: LayerControl,
                 state_dot: tuple, tlm_record: np.ndarray, th_dot: LayerControl,
                 lam_next: tuple, mu_next: tuple) -> tuple[tuple, LayerControl]:
        c = self._c(k)
        mu_a, mu_b = mu_next
        u_hat, th_hat = self.forcing.soa(state[1], record, th, state_dot[1], tlm_record, th_dot,
                                         c * lam_next[1], c * mu_b)
        u_hat += mu_a + 2.0 * mu_b
        return (-mu_b, u_hat), th_hat
