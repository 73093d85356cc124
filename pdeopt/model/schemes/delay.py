r"""Delay layers: explicit Euler for a delay differential equation, the state a ring of layers."""

from collections import namedtuple

import numpy as np

from pdeopt.checks import integer, real
from pdeopt.data.validation import shown
from pdeopt.errors import ControlDomainError, InputError, OptionError
from pdeopt.model.delay_forcing import DelayForcing
from pdeopt.model.schemes.scheme import Scheme

__all__ = ["DelayScheme"]

HISTORIES = ("constant", "input")


class DelayScheme(Scheme):
    r"""A delay layer: :math:`u_{k+1} = u_k + hF(u_k, v_k;\theta_k)`, :math:`v_k \approx
    u(t_k - \tau)`.

    For a delay of :math:`m` layers, :math:`\tau = mh`, the delayed state is :math:`v_k =
    u_{k-m}`; a learned delay :math:`\tau = (m + s)h`, :math:`s \in [0, 1)`, interpolates
    linearly between layers,

    .. math:: v_k = (1 - s)\,u_{k-m} + s\,u_{k-m-1}, \qquad
       \frac{\partial v_k}{\partial\tau} = \frac{u_{k-m-1} - u_{k-m}}{h},

    so :math:`\tau` is a control with an exact derivative (the map is piecewise linear in
    :math:`\tau`, smooth between multiples of :math:`h`). The state tuple is the ring
    :math:`(u_{k-L+1}, \dots, u_k)` of the last :math:`L` layers, :math:`L = m + 1` (fixed)
    or :math:`\lfloor\tau_\max/h\rfloor + 2` (learned), and before the first layer it holds
    the history: :math:`u_{-j} = u_0` (``history="constant"``), or the :math:`L` states the
    network input carries, oldest first, ``C`` channels each (``history="input"``, with
    ``Network(..., lift=False)``: each sample its own history segment).

    Adjoint, with :math:`\lambda` the adjoint of :math:`u_{k+1}` and :math:`\bar v = hF_v^T
    \lambda`: the ring shifts back, :math:`\bar u_k \mathrel{+}= \lambda + hF_u^T\lambda`,
    :math:`\bar u_{k-m} \mathrel{+}= (1 - s)\bar v`, :math:`\bar u_{k-m-1} \mathrel{+}= s\bar
    v`, :math:`\bar\theta_k = hF_\theta^T\lambda`, :math:`\bar\tau = \bar v \cdot (u_{k-m-1}
    - u_{k-m})/h`. The second-order adjoint is its tangent; with a learned delay it adds the
    terms in :math:`\dot s = \dot\tau/h`, and recomputes :math:`\bar v` (one forcing adjoint)
    rather than keep it between calls.

    A delay of 0 with a forcing of :math:`v` alone is the explicit Euler scheme.

    Parameters
    ----------
    forcing
        The :class:`~pdeopt.model.delay_forcing.DelayForcing` :math:`F(u, v;\theta)`.
    step
        The time step :math:`h > 0`.
    delay
        The delay in layers: an integer :math:`m \ge 0`; with ``learned=True`` the initial
        :math:`\tau/h`, any real in :math:`[0, \tau_\max/h]`.
    learned
        Whether the delay is a control (the block ``scheme.delay`` of shape ``(1,)``, in units
        of time, :math:`\tau`, shared by the layers and not decayed by the regulariser).
    max_delay
        With ``learned=True``, the largest delay in layers, :math:`\tau_\max/h` (it sets the
        ring's length); a delay outside :math:`[0, \tau_\max]` is a
        :class:`~pdeopt.errors.ControlDomainError`, a rejected trust-region step.
    history
        ``"constant"`` or ``"input"`` (above).
    """

    name = "delay"
    order = 1
    forcing_type = DelayForcing

    def __init__(self, forcing: DelayForcing, step: float, delay, *, learned: bool = False,
                 max_delay: float | None = None, history: str = "constant"):
        super().__init__(forcing, step)
        owner = type(self).__name__
        if not isinstance(learned, (bool, np.bool_)):
            raise InputError(f"{owner}: learned={shown(learned)} must be True or False.")
        self.learned = bool(learned)
        if self.learned:
            if max_delay is None:
                raise InputError(f"{owner}: a learned delay needs max_delay, the largest delay in "
                                 f"layers it may reach (it sets the ring of stored layers), e.g. "
                                 f"max_delay=2 * delay.")
            self.max_delay = real(owner, "max_delay", max_delay, low=0.0,
                                  remedy="the largest delay in layers is non-negative")
            self.delay = real(owner, "delay", delay, low=0.0, high=self.max_delay,
                              remedy=f"the initial delay in layers lies in [0, max_delay="
                                     f"{self.max_delay:g}]")
            self.ring = int(np.floor(self.max_delay)) + 2
        else:
            self.delay = integer(owner, "delay", delay, low=0,
                                 remedy="a fixed delay is a whole number m >= 0 of layers, "
                                        "tau = m h; for a delay between layers pass learned=True "
                                        "(then it is a control, interpolated linearly)")
            self.max_delay = None
            self.ring = self.delay + 1
        if history not in HISTORIES:
            raise OptionError(f"{owner}: unknown history={shown(history)}; choose from "
                              f"{list(HISTORIES)}.")
        self.history = history
        fields = forcing.control_type._fields + (("delay",) if self.learned else ())
        self.control_type = namedtuple("DelayLayerControl", fields)
        self._n_forcing = len(forcing.control_type._fields)

    # -- controls ---------------------------------------------------------------------------
    def control_blocks(self, channels):
        return self.forcing.control_blocks(channels)

    def shared_blocks(self, channels):
        return (("delay", (1,)),) if self.learned else ()

    def initial_layer_controls(self, rng, scale, channels):
        return self.forcing.initial_controls(rng, scale, channels)

    def initial_shared_controls(self, channels):
        return [np.array([self.delay * self.h])] if self.learned else []

    def input_channels(self, channels):
        """``C`` for a constant history; ``L C`` when the input carries the ring."""
        return channels * (self.ring if self.history == "input" else 1)

    def check_depth(self, depth):
        """With a constant history a delay of at least ``depth`` layers would only ever see
        :math:`u_0`; a history through the input may reach past the network (each window then
        reads its delayed states from its own history)."""
        reach = self.max_delay if self.learned else self.delay
        if self.history == "constant" and reach >= depth:
            what = "the largest delay max_delay" if self.learned else "the delay"
            raise InputError(f"DelayScheme: {what} of {reach:g} layers is not shorter than the "
                             f"network's {depth} layers, so every delayed state would be "
                             f"history; use more layers (a smaller step) or a shorter delay.")

    def _parts(self, th):
        """The forcing's control, the delay's whole layers :math:`m` and fraction :math:`s`."""
        tf = self.forcing.control_type(*th[:self._n_forcing])
        if not self.learned:
            return tf, self.delay, 0.0
        tau = float(th.delay[0])
        d = tau / self.h
        if not 0.0 <= d <= self.max_delay:  # also NaN
            raise ControlDomainError(
                f"DelayScheme: the delay tau={tau:g} is outside [0, max_delay * h = "
                f"{self.max_delay * self.h:g}]; start inside it, or build the scheme with a "
                f"larger max_delay (a trust region rejects such a trial step).")
        m = int(np.floor(d))
        return tf, m, d - m

    @staticmethod
    def _delayed(ring, m, s):
        """:math:`(1 - s)r_{-1-m} + s\\,r_{-2-m}` of a ring (the entry itself when s = 0)."""
        if s == 0.0:
            return ring[-1 - m]
        v = (1.0 - s) * ring[-1 - m]
        v += s * ring[-2 - m]
        return v

    def _gap(self, ring, m):
        """:math:`(r_{-2-m} - r_{-1-m})/h`, the derivative of the delayed state in :math:`\\tau`."""
        return (ring[-2 - m] - ring[-1 - m]) / self.h

    # -- the ring ---------------------------------------------------------------------------
    def start(self, u0):
        if self.history == "constant":
            return (u0,) * self.ring
        C = u0.shape[-1] // self.ring
        return tuple(np.ascontiguousarray(u0[..., j * C:(j + 1) * C]) for j in range(self.ring))

    def start_adjoint(self, lam):
        if self.history == "input":
            return np.concatenate(lam, axis=-1)
        total = lam[0].copy()
        for a in lam[1:]:
            total += a
        return total

    # -- kernels ----------------------------------------------------------------------------
    def step(self, k, state, th):
        """The record is the forcing's and the delayed state :math:`v_k`."""
        tf, m, s = self._parts(th)
        u = state[-1]
        v = self._delayed(state, m, s)
        F, z = self.forcing(u, v, tf)
        F *= self.h
        F += u
        return state[1:] + (F,), (z, v)

    def step_tlm(self, k, state, record, th, state_dot, th_dot):
        r""":math:`\dot u_{k+1} = \dot u_k + h\dot F`, :math:`\dot v_k = (1 - s)\dot u_{k-m}
        + s\dot u_{k-m-1} + \dot\tau\,\partial_\tau v_k`; the record is :math:`(\dot z,
        \dot v)`."""
        tf, m, s = self._parts(th)
        (z, v), u_dot = record, state_dot[-1]
        v_dot = self._delayed(state_dot, m, s)
        if self.learned and th_dot.delay[0] != 0.0:
            v_dot = v_dot + th_dot.delay[0] * self._gap(state, m)
        F_dot, z_dot = self.forcing.tlm(state[-1], v, z, tf, u_dot, v_dot,
                                        self.forcing.control_type(*th_dot[:self._n_forcing]))
        F_dot *= self.h
        F_dot += u_dot
        return state_dot[1:] + (F_dot,), (z_dot, v_dot)

    def _scatter(self, ring_next, present, m, s, v_bar, extra=()):
        """The shifted ring's adjoint plus ``present`` at :math:`u_k` and the delayed terms
        (``extra``: further ``(index, array, coefficient)`` terms). New arrays where summed."""
        out = [None] + list(ring_next[:-1])

        def add(i, x, c=1.0):
            if x is None or c == 0.0:
                return
            out[i] = c * x if out[i] is None else out[i] + c * x

        L = self.ring
        for x in present:
            add(L - 1, x)
        add(L - 1 - m, v_bar, 1.0 - s)
        add(L - 2 - m, v_bar, s)
        for i, x, c in extra:
            add(i, x, c)
        return tuple(np.zeros_like(v_bar) if a is None else a for a in out)

    def step_adjoint(self, k, state, record, th, lam_next):
        tf, m, s = self._parts(th)
        z, v = record
        lam = lam_next[-1]
        u_bar, v_bar, tf_bar = self.forcing.adjoint(state[-1], v, z, tf, self.h * lam)
        lam_ring = self._scatter(lam_next, (lam, u_bar), m, s, v_bar)
        shared = (np.array([np.vdot(v_bar, self._gap(state, m))]),) if self.learned else ()
        return lam_ring, self.control_type(*tf_bar, *shared)

    def step_soa(self, k, state, record, th, state_dot, tlm_record, th_dot, lam_next, mu_next):
        tf, m, s = self._parts(th)
        (z, v), (z_dot, v_dot) = record, tlm_record
        lam, mu = lam_next[-1], mu_next[-1]
        tf_dot = self.forcing.control_type(*th_dot[:self._n_forcing])
        u_hat, v_hat, tf_hat = self.forcing.soa(state[-1], v, z, tf, state_dot[-1], v_dot, z_dot,
                                                tf_dot, self.h * lam, self.h * mu)
        if not self.learned:
            return self._scatter(mu_next, (mu, u_hat), m, s, v_hat), self.control_type(*tf_hat)
        _, v_bar, _ = self.forcing.adjoint(state[-1], v, z, tf, self.h * lam)
        s_dot = th_dot.delay[0] / self.h
        L = self.ring
        mu_ring = self._scatter(mu_next, (mu, u_hat), m, s, v_hat,
                                extra=((L - 1 - m, v_bar, -s_dot), (L - 2 - m, v_bar, s_dot)))
        tau_hat = np.vdot(v_hat, self._gap(state, m)) + np.vdot(v_bar, self._gap(state_dot, m))
        return mu_ring, self.control_type(*tf_hat, np.array([tau_hat]))

    def __repr__(self):
        delay = (f"learned, {self.delay:g} of max {self.max_delay:g} layers" if self.learned
                 else f"{self.delay} layers")
        return (f"DelayScheme(step={self.h}, delay={delay}, history={self.history!r}, "
                f"forcing={type(self.forcing).__name__})")
