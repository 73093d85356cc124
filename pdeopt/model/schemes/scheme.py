r"""The time-stepping scheme :math:`\Phi_h` of a network: one layer is one time step.

A scheme carries a state tuple from layer to layer (one array for one-step schemes, two for
leapfrog and Verlet) and exposes, per layer ``k``, four kernels that take every state they
need as an argument and keep nothing between calls (the network's store-all sweeps,
:class:`~pdeopt.model.network.Network`, call them with the stored states; DESIGN.md §2):

``step(k, state, th) -> (state_next, record)``
    the forward step; ``record`` is what the reverse sweep needs besides ``state``.
``step_tlm(k, state, record, th, state_dot, th_dot) -> (state_dot_next, tlm_record)``
    the tangent-linear step.
``step_adjoint(k, state, record, th, lam_next) -> (lam, th_bar)``
    the adjoint step (transposed Jacobians).
``step_soa(k, state, record, th, state_dot, tlm_record, th_dot, lam_next, mu_next)``
    ``-> (mu, th_hat)``, the second-order adjoint step: the tangent of ``step_adjoint``.

``th`` is the layer's control, a :attr:`Scheme.control_type` namedtuple of the fields of
:meth:`Scheme.control_blocks` (each layer's own) and :meth:`Scheme.shared_blocks` (one for all
layers, a learned delay); ``th_bar`` and ``th_hat`` have the same structure. The default is the
:class:`~pdeopt.model.control.LayerControl` ``(weight, bias)``; a scheme with
:attr:`Scheme.control_sets` ``P > 1`` (Verlet: 2) gets it with a leading set axis of length
``P``.
"""

import numpy as np

from pdeopt.checks import real
from pdeopt.data.validation import shown
from pdeopt.errors import InputError
from pdeopt.model.control import LayerControl
from pdeopt.model.forcing import Forcing

__all__ = ["Scheme", "EulerScheme"]


class Scheme:
    """A one-layer-per-time-step discretisation of :math:`\\dot u = F(u;\\theta(t))`.

    Parameters
    ----------
    forcing
        The right-hand side :math:`F` with its derivative kernels (:mod:`pdeopt.model.forcing`).
    step
        The time step :math:`h > 0`, finite (:math:`h = T/N` for a final time :math:`T` and
        :math:`N` layers).
    """

    name = None
    #: Control sets per layer: 1 gives the layer blocks ``layers.weight`` ``(N, S, C, C)`` and
    #: ``layers.bias`` ``(N, C)``; ``P > 1`` gives ``(N, P, S, C, C)`` and ``(N, P, C)``, and
    #: the kernels receive the layer's ``(P, ...)`` :class:`LayerControl` and return its
    #: derivatives in the same shape.
    control_sets = 1
    #: The order :math:`p` of convergence of :math:`u_N` to the continuous-time limit as the
    #: layers are refined at fixed :math:`T = Nh`, for controls sampled from a smooth
    #: :math:`\theta(t)` at :attr:`control_offsets` (:mod:`pdeopt.analysis.consistency`).
    order = None
    #: Where in :math:`[t_k, t_{k+1}]` each control set of layer :math:`k` samples a
    #: continuous-time control, in units of :math:`h`: :math:`\theta_{k,s} =
    #: \theta_s(t_k + o_s h)`.
    control_offsets = (0.0,)
    #: The namedtuple the kernels receive a layer's control in: one field per block of
    #: :meth:`control_blocks`, then of :meth:`shared_blocks`.
    control_type = LayerControl
    #: The class of forcing the scheme steps.
    forcing_type = Forcing

    def __init__(self, forcing: Forcing, step: float):
        owner = type(self).__name__
        if not isinstance(forcing, self.forcing_type):
            raise InputError(f"{owner}: forcing={shown(forcing)} must be a "
                             f"{self.forcing_type.__name__} ({self.forcing_type.__module__}).")
        self.forcing = forcing
        self.h = real(owner, "step", step, low=0.0, low_open=True,
                      remedy="the time step is h = T/N > 0 for a final time T and N layers, "
                             "e.g. step=1.0/depth")

    def control_blocks(self, channels: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """``(field, shape)`` of each layer's own controls: ``weight`` ``(P..., S, C, C)`` and
        ``bias`` ``(P..., C)`` (``P`` the :attr:`control_sets` when above 1)."""
        sets = () if self.control_sets == 1 else (self.control_sets,)
        S, C = self.forcing.ops.S, channels
        return (("weight", sets + (S, C, C)), ("bias", sets + (C,)))

    def shared_blocks(self, channels: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """``(field, shape)`` of the controls all layers share (none by default)."""
        return ()

    def initial_layer_controls(self, rng: np.random.Generator, scale: float,
                               channels: int) -> list[np.ndarray]:
        """One layer's initial controls, in the order of :meth:`control_blocks` (every layer
        starts from the same draw): mixing matrices normal with variance
        ``scale**2 / (S C)``, biases zero."""
        (_, w), (_, b) = self.control_blocks(channels)
        S = self.forcing.ops.S
        return [scale / np.sqrt(S * channels) * rng.standard_normal(w), np.zeros(b)]

    def initial_shared_controls(self, channels: int) -> list[np.ndarray]:
        """The initial values of :meth:`shared_blocks`."""
        return []

    def input_channels(self, channels: int) -> int:
        """Channels of the network input when it is the initial state itself (no lift)."""
        return channels

    def check_depth(self, depth: int) -> None:
        """Reject a network depth the scheme cannot step (an :class:`InputError`)."""

    def start(self, u0: np.ndarray) -> tuple:
        """The state tuple of layer 0 from the lifted input ``u0``."""
        return (u0,)

    def start_adjoint(self, lam: tuple) -> np.ndarray:
        """Transpose of :meth:`start`: the adjoint of ``u0``."""
        return lam[0]

    def finish(self, state: tuple) -> np.ndarray:
        """The network output :math:`u_N` from the last state."""
        return state[-1]

    def finish_adjoint(self, state: tuple, lam_N: np.ndarray) -> tuple:
        """Transpose of :meth:`finish`."""
        return tuple(np.zeros_like(s) for s in state[:-1]) + (lam_N,)

    def __repr__(self):
        return f"{type(self).__name__}(step={self.h}, forcing={type(self.forcing).__name__})"


class EulerScheme(Scheme):
    r"""Explicit Euler: :math:`u_{k+1} = u_k + h F(u_k;\theta_k)`.

    Adjoint: :math:`\lambda_k = \lambda_{k+1} + h F_u^T \lambda_{k+1}`,
    :math:`\bar\theta_k = h F_\theta^T \lambda_{k+1}`.
    """

    order = 1

    def step(self, k: int, state: tuple, th: LayerControl) -> tuple[tuple, np.ndarray]:
        """:math:`u_{k+1} = u_k + hF(u_k)`; the record is the pre-activation :math:`z_k`."""
        (u,) = state
        F, z = self.forcing(u, th)
        F *= self.h
        F += u
        return (F,), z

    def step_tlm(self, k: int, state: tuple, record: np.ndarray, th: LayerControl,
                 state_dot: tuple, th_dot: LayerControl) -> tuple[tuple, np.ndarray]:
        r""":math:`\dot u_{k+1} = \dot u_k + h\dot F`; the record is :math:`\dot z_k`."""
        F_dot, z_dot = self.forcing.tlm(state[0], record, th, state_dot[0], th_dot)
        F_dot *= self.h
        F_dot += state_dot[0]
        return (F_dot,), z_dot

    def step_adjoint(self, k: int, state: tuple, record: np.ndarray, th: LayerControl,
                     lam_next: tuple) -> tuple[tuple, LayerControl]:
        r""":math:`\lambda_k = \lambda_{k+1} + hF_u^T\lambda_{k+1}`,
        :math:`\bar\theta_k = hF_\theta^T\lambda_{k+1}`."""
        (lam,) = lam_next
        u_bar, th_bar = self.forcing.adjoint(state[0], record, th, self.h * lam)
        u_bar += lam
        return (u_bar,), th_bar

    def step_soa(self, k: int, state: tuple, record: np.ndarray, th: LayerControl,
                 state_dot: tuple, tlm_record: np.ndarray, th_dot: LayerControl,
                 lam_next: tuple, mu_next: tuple) -> tuple[tuple, LayerControl]:
        r""":math:`\mu_k = \mu_{k+1} + hF_u^T\mu_{k+1} + h(F_u^T)^\cdot\lambda_{k+1}`: the
        tangent of :meth:`step_adjoint`."""
        (lam,), (mu,) = lam_next, mu_next
        u_hat, th_hat = self.forcing.soa(state[0], record, th, state_dot[0], tlm_record, th_dot,
                                         self.h * lam, self.h * mu)
        u_hat += mu
        return (u_hat,), th_hat
