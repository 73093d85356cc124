r"""The Hamiltonian (Verlet) scheme: a symplectic pair of symmetric half-steps."""

import numpy as np

from pdeopt.model.activation import Activation
from pdeopt.model.control import LayerControl
from pdeopt.model.forcing import SymmetricForcing
from pdeopt.model.operators import OperatorSet
from pdeopt.model.schemes.scheme import Scheme

__all__ = ["VerletScheme"]


def _split(th: LayerControl) -> tuple[LayerControl, LayerControl]:
    """The two control sets :math:`\\theta_{k,1}, \\theta_{k,2}` of one Verlet layer."""
    return LayerControl(th.weight[0], th.bias[0]), LayerControl(th.weight[1], th.bias[1])


def _stack(th1: LayerControl, th2: LayerControl) -> LayerControl:
    """The two half-steps' control derivatives as one layer's ``(2, ...)`` block."""
    return LayerControl(np.stack([th1.weight, th2.weight]), np.stack([th1.bias, th2.bias]))


class VerletScheme(Scheme):
    r"""Hamiltonian network (Ruthotto & Haber 2020, §3.3), the Verlet pair

    .. math:: y_{k+1} = y_k + h K_{k,1}^*\sigma(K_{k,1} z_k + b_{k,1}), \qquad
       z_{k+1} = z_k - h K_{k,2}^*\sigma(K_{k,2} y_{k+1} + b_{k,2}).

    With the :class:`~pdeopt.model.forcing.SymmetricForcing` :math:`F(u;\theta) =
    -K^*\sigma(Ku + b)` the layer is :math:`y_{k+1} = y_k - hF(z_k;\theta_{k,1})`,
    :math:`z_{k+1} = z_k + hF(y_{k+1};\theta_{k,2})`: two shears, so the map is volume
    preserving and exactly invertible, :math:`z_k = z_{k+1} - hF(y_{k+1};\theta_{k,2})`,
    :math:`y_k = y_{k+1} + hF(z_k;\theta_{k,1})`, whatever :math:`\sigma` and the controls.

    The state is the pair :math:`(y_k, z_k)` of :math:`C` channels each; the lifted input is
    :math:`y_0` and :math:`z_0 = 0`, and the output is :math:`u_N = y_N`, so the readout sees
    :math:`C` channels as for every scheme. Each layer has two control sets
    (:attr:`control_sets` = 2): the layer blocks are ``layers.weight`` ``(N, 2, S, C, C)`` and
    ``layers.bias`` ``(N, 2, C)``, set 0 acting on :math:`z_k`, set 1 on :math:`y_{k+1}`.

    **Second-order start.** In the interior the pair is the staggered leapfrog (Störmer–Verlet)
    method for :math:`\dot y = -F(z;\theta_1(t))`, :math:`\dot z = F(y;\theta_2(t))` with
    :math:`y_k \approx y(t_k)` and :math:`z_k \approx z(t_{k+1/2})`, second order when
    :math:`\theta_{k,1} = \theta_1(t_{k+1/2})` and :math:`\theta_{k,2} = \theta_2(t_{k+1})`.
    But :math:`z_0 = 0` is :math:`z(t_0)`, not :math:`z(t_{1/2})`, so the first
    :math:`z`-update spans :math:`\tfrac32 h`, from :math:`t_0` to :math:`t_{3/2}`:

    .. math:: z_{k+1} = z_k + c_k F(y_{k+1};\theta_{k,2}), \qquad
       c_0 = \tfrac32 h,\ c_k = h,

    as the leapfrog scheme halves its first force. The start makes a local error of
    :math:`O(h^2)` once, so the network converges at second order as its layers are refined
    (:func:`pdeopt.analysis.consistency_study`); with :math:`c_0 = h` it would be first order.

    Adjoint, with :math:`(\lambda^y, \lambda^z)` the adjoint of :math:`(y_{k+1}, z_{k+1})`:
    :math:`\bar y = \lambda^y + c_kF_u(y_{k+1};\theta_{k,2})^T\lambda^z` (the adjoint of
    :math:`y_k` and of :math:`y_{k+1}` alike), :math:`\bar z = \lambda^z -
    hF_u(z_k;\theta_{k,1})^T\bar y`, :math:`\bar\theta_{k,2} = c_kF_\theta^T\lambda^z`,
    :math:`\bar\theta_{k,1} = -hF_\theta^T\bar y`: the half-steps transposed in reverse order.
    The second-order adjoint is its tangent, each half the forcing's ``soa``.

    Parameters
    ----------
    operators
        The assembled :class:`~pdeopt.model.operators.OperatorSet`.
    activation
        A :math:`C^2` :class:`~pdeopt.model.activation.Activation`.
    step
        The time step :math:`h = T/N`.
    """

    name = "verlet"
    control_sets = 2
    order = 2
    control_offsets = (0.5, 1.0)

    def __init__(self, operators: OperatorSet, activation: Activation, step: float):
        super().__init__(SymmetricForcing(operators, activation, owner=type(self).__name__), step)

    def coefficient(self, k: int) -> float:
        """Layer ``k``'s second half-step coefficient: :math:`c_0 = \tfrac32 h`, else
        :math:`c_k = h`."""
        return (1.5 if k == 0 else 1.0) * self.h

    def start(self, u0: np.ndarray) -> tuple:
        """:math:`(y_0, z_0) = (u_0, 0)`."""
        return (u0, np.zeros_like(u0))

    def start_adjoint(self, lam: tuple) -> np.ndarray:
        return lam[0]

    def finish(self, state: tuple) -> np.ndarray:
        """:math:`u_N = y_N`."""
        return state[0]

    def finish_adjoint(self, state: tuple, lam_N: np.ndarray) -> tuple:
        return (lam_N, np.zeros_like(state[1]))

    def step(self, k: int, state: tuple, th: LayerControl) -> tuple[tuple, tuple]:
        """The record is both pre-activations and :math:`y_{k+1}` (the second half-step's
        input; the same array as the next state's, not a copy)."""
        y, z = state
        th1, th2 = _split(th)
        F1, r1 = self.forcing(z, th1)
        F1 *= -self.h
        F1 += y
        F2, r2 = self.forcing(F1, th2)
        F2 *= self.coefficient(k)
        F2 += z
        return (F1, F2), (r1, r2, F1)

    def step_tlm(self, k: int, state: tuple, record: tuple, th: LayerControl,
                 state_dot: tuple, th_dot: LayerControl) -> tuple[tuple, tuple]:
        r""":math:`\dot y_{k+1} = \dot y_k - h\dot F_1`, :math:`\dot z_{k+1} = \dot z_k +
        c_k\dot F_2`; the record is both :math:`\dot z` of the forcings and :math:`\dot y_{k+1}`."""
        (_, z), (r1, r2, y1), (y_dot, z_dot) = state, record, state_dot
        th1, th2 = _split(th)
        th1_dot, th2_dot = _split(th_dot)
        F1_dot, r1_dot = self.forcing.tlm(z, r1, th1, z_dot, th1_dot)
        F1_dot *= -self.h
        F1_dot += y_dot
        F2_dot, r2_dot = self.forcing.tlm(y1, r2, th2, F1_dot, th2_dot)
        F2_dot *= self.coefficient(k)
        F2_dot += z_dot
        return (F1_dot, F2_dot), (r1_dot, r2_dot, F1_dot)

    def _y_bar(self, k, record, th2, lam_next):
        """:math:`\\bar y = \\lambda^y + c_kF_u(y_{k+1})^T\\lambda^z` and
        :math:`\\bar\\theta_{k,2}`."""
        lam_y, lam_z = lam_next
        y_bar, th2_bar = self.forcing.adjoint(record[2], record[1], th2,
                                              self.coefficient(k) * lam_z)
        y_bar += lam_y
        return y_bar, th2_bar

    def step_adjoint(self, k: int, state: tuple, record: tuple, th: LayerControl,
                     lam_next: tuple) -> tuple[tuple, LayerControl]:
        th1, th2 = _split(th)
        y_bar, th2_bar = self._y_bar(k, record, th2, lam_next)
        z_bar, th1_bar = self.forcing.adjoint(state[1], record[0], th1, -self.h * y_bar)
        z_bar += lam_next[1]
        return (y_bar, z_bar), _stack(th1_bar, th2_bar)

    def step_soa(self, k: int, state: tuple, record: tuple, th: LayerControl,
                 state_dot: tuple, tlm_record: tuple, th_dot: LayerControl,
                 lam_next: tuple, mu_next: tuple) -> tuple[tuple, LayerControl]:
        """The tangent of :meth:`step_adjoint`; :math:`\\bar y` is recomputed from
        ``lam_next`` (one forcing adjoint) rather than kept between calls."""
        h = self.h
        (r1, r2, y1), (r1_dot, r2_dot, y1_dot) = record, tlm_record
        th1, th2 = _split(th)
        th1_dot, th2_dot = _split(th_dot)
        y_bar, _ = self._y_bar(k, record, th2, lam_next)
        mu_y, mu_z = mu_next
        c = self.coefficient(k)
        y_hat, th2_hat = self.forcing.soa(y1, r2, th2, y1_dot, r2_dot, th2_dot,
                                          c * lam_next[1], c * mu_z)
        y_hat += mu_y
        z_hat, th1_hat = self.forcing.soa(state[1], r1, th1, state_dot[1], r1_dot, th1_dot,
                                          -h * y_bar, -h * y_hat)
        z_hat += mu_z
        return (y_hat, z_hat), _stack(th1_hat, th2_hat)
