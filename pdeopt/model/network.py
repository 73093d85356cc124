r"""A network as a discretised differential equation, with its four sweeps.

.. math::

    u_0 = \sigma_0\Big(\sum_s D_s x\, \Theta_{0,s}^T + b_0\Big), \qquad
    u_{k+1} = \Phi_h(u_k, u_{k-1}; \theta_k),\ k = 0, \dots, N-1,

with the opening layer lifting the input channels to :math:`C` (:math:`\sigma_0` the identity
or an activation; without a lift :math:`u_0 = x`) and :math:`\Phi_h` a
:class:`~pdeopt.model.schemes.Scheme`. The sweeps store every state (store-all): the forward
states and records, the tangent-linear states and the adjoints that the second-order adjoint
sweep reads. Nothing is recomputed for a Hessian action.
"""

from collections import namedtuple

import numpy as np
from mpi4py import MPI

from pdeopt.checks import integer, real
from pdeopt.data.validation import shown
from pdeopt.errors import InputError
from pdeopt.model.activation import Activation, check_activation
from pdeopt.model.control import ControlLayout
from pdeopt.model.schemes.scheme import Scheme
from pdeopt.model.stencil import channel_sums, contract, mix
from pdeopt.parallel import raise_collectively

__all__ = ["Network", "Trajectory", "Adjoints"]

#: The stored forward sweep: ``states[k]`` enters layer k, ``records[k]`` is its record,
#: ``spread`` is :math:`D_s x` of the input, ``opening`` the opening pre-activation (or None).
Trajectory = namedtuple("Trajectory", ["states", "records", "spread", "opening"])
#: The stored adjoint sweep: ``layers[k]`` enters layer k's adjoint, ``opening`` is the
#: adjoint of :math:`u_0`.
Adjoints = namedtuple("Adjoints", ["layers", "opening"])


class Network:
    r"""Opening layer plus ``depth`` time steps of ``scheme`` on ``channels`` channels.

    Parameters
    ----------
    scheme
        The time-stepping :class:`~pdeopt.model.schemes.Scheme` (carries the operators,
        activation and step).
    channels
        :math:`C \ge 1`, channels of the state (an integer).
    depth
        :math:`N \ge 1`, the number of layers (time steps; an integer).
    in_channels
        Channels of the input (an integer :math:`\ge 1`): 1 for grey images by default; without
        a lift, the scheme's :meth:`~pdeopt.model.schemes.Scheme.input_channels` (the default).
    opening_activation
        :math:`\sigma_0`: ``None`` for a linear lift, or an
        :class:`~pdeopt.model.activation.Activation` (Ruthotto & Haber's opening layer).
    lift
        ``True``: the opening layer lifts the input (controls ``opening.weight``,
        ``opening.bias``). ``False``: the input is the initial state, :math:`u_0 = x` (an
        ODE's initial value, a delay equation's history), and there is no opening control.
    autonomous
        ``False``: each layer has its own controls, blocks ``layers.<field>`` with a leading
        axis of length :math:`N`. ``True``: one set for every layer, blocks
        ``forcing.<field>`` without it, :math:`F(u;\theta)` a time-independent law (a neural
        ODE's or DDE's right-hand side), its derivative the sum over the layers. Controls the
        layers share in any case (a learned delay) are the blocks ``scheme.<field>``.
    """

    def __init__(self, scheme: Scheme, channels: int, depth: int, in_channels: int | None = None,
                 opening_activation: Activation | None = None, *, lift: bool = True,
                 autonomous: bool = False):
        if not isinstance(scheme, Scheme):
            raise InputError(f"Network: scheme={shown(scheme)} must be a Scheme; build one, e.g. "
                             f"pdeopt.ParabolicScheme(ops, pdeopt.Tanh(), step=1.0 / depth).")
        self.C = integer("Network", "channels", channels, low=1,
                         remedy="the state needs at least one channel")
        self.N = integer("Network", "depth", depth, low=1,
                         remedy="a network has at least one layer (time step)")
        for name, flag in (("lift", lift), ("autonomous", autonomous)):
            if not isinstance(flag, (bool, np.bool_)):
                raise InputError(f"Network: {name}={shown(flag)} must be True or False.")
        scheme.check_depth(self.N)
        self.lift, self.autonomous = bool(lift), bool(autonomous)
        state_channels = scheme.input_channels(self.C)
        if in_channels is None:
            in_channels = 1 if lift else state_channels
        self.c_in = integer("Network", "in_channels", in_channels, low=1,
                            remedy="the input has at least one channel (1 for grey images)")
        if not lift and self.c_in != state_channels:
            raise InputError(f"Network: without a lift the input is the initial state, "
                             f"{state_channels} channels for {type(scheme).__name__}, but "
                             f"in_channels={self.c_in}; pass in_channels={state_channels} or "
                             f"lift=True.")
        if opening_activation is not None:
            if not lift:
                raise InputError("Network: opening_activation needs the opening layer; pass "
                                 "lift=True or opening_activation=None.")
            check_activation("Network", "opening_activation", opening_activation)
        self.scheme = scheme
        self.ops = scheme.forcing.ops
        self.opening_activation = opening_activation
        S = self.ops.S
        blocks = [("opening.weight", (S, self.C, self.c_in)),
                  ("opening.bias", (self.C,))] if lift else []
        #: ``(block name, one value per layer?)`` for each field of ``scheme.control_type``.
        self.control_fields = []
        for field, shape in scheme.control_blocks(self.C):
            name, per_layer = ((f"forcing.{field}", False) if autonomous
                               else (f"layers.{field}", True))
            blocks.append((name, ((self.N,) if per_layer else ()) + tuple(shape)))
            self.control_fields.append((name, per_layer))
        for field, shape in scheme.shared_blocks(self.C):
            blocks.append((f"scheme.{field}", tuple(shape)))
            self.control_fields.append((f"scheme.{field}", False))
        self.layout = ControlLayout(blocks)

    @property
    def comm(self) -> MPI.Comm:
        """The spatial communicator (the operators')."""
        return self.ops.comm

    @property
    def step(self) -> float:
        """The time step :math:`h` of the scheme."""
        return self.scheme.h

    def initial_controls(self, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
        """Random controls for this network's layout (same on every rank for the same ``rng``).

        The opening and layer mixing matrices are normal with variance ``scale**2 / (S c)``,
        ``c`` the input channels of the layer (its fan-in is ``S c``); the biases are zero
        (:meth:`~pdeopt.model.schemes.Scheme.initial_layer_controls`).
        ``scale`` is finite and non-negative.
        """
        if not isinstance(rng, np.random.Generator):
            raise InputError(f"Network.initial_controls: rng={shown(rng)} must be a "
                             f"numpy.random.Generator; pass np.random.default_rng(seed).")
        scale = real("Network.initial_controls", "scale", scale, low=0.0,
                     remedy="the mixing matrices' standard deviation is scale / sqrt(fan-in)")
        theta = np.zeros(self.layout.size)
        v = self.layout.views(theta)
        if self.lift:
            W0 = v["opening.weight"]
            W0[...] = scale / np.sqrt(self.ops.S * self.c_in) * rng.standard_normal(W0.shape)
        # One draw for every layer: controls smooth in time, so R's time term starts at zero.
        values = self.scheme.initial_layer_controls(rng, scale, self.C) + \
            self.scheme.initial_shared_controls(self.C)
        for (name, _), value in zip(self.control_fields, values):
            v[name][...] = value
        return theta

    def _layer(self, v, k):
        return self.scheme.control_type(*(v[name][k] if per_layer else v[name]
                                          for name, per_layer in self.control_fields))

    def _store(self, g, k, th_bar):
        """Layer ``k``'s control derivative into the views ``g`` (summed into shared blocks)."""
        for (name, per_layer), value in zip(self.control_fields, th_bar):
            if per_layer:
                g[name][k] = value
            else:
                g[name] += value

    def check_input(self, x: np.ndarray) -> None:
        """Reject an input block that is not ``(n_owned, batch, in_channels)`` with
        ``batch >= 1`` (its finiteness is :func:`~pdeopt.data.validation.check_batch`'s).

        Collective: ``n_owned`` differs between ranks, so a block that fits on one rank may not
        on another; every rank raises the error of the lowest rank that has one.
        """
        n, shape = self.ops.n_owned, np.shape(x)
        error = None
        if len(shape) != 3 or shape[0] != n or shape[2] != self.c_in:
            error = InputError(f"x: network input must have shape (n_points={n}, batch, "
                               f"in_channels={self.c_in}), got {shape} on rank "
                               f"{self.comm.rank}; lay the data out with PixelGrid.to_field on "
                               f"this rank's points.")
        elif shape[1] < 1:
            error = InputError(f"x: the input block holds no samples (shape {shape}); give at "
                               f"least one sample (column of x).")
        raise_collectively(error, self.comm)

    # -- forward ---------------------------------------------------------------------------
    def forward(self, theta: np.ndarray, x: np.ndarray,
                store: bool = True) -> tuple[np.ndarray, Trajectory | None]:
        """Run the network; return ``(u_N, trajectory)`` (trajectory ``None`` unless ``store``)."""
        v = self.layout.views(theta)
        if self.lift:
            Yx = self.ops.forward.spread(x)
            z0 = mix(Yx, v["opening.weight"])
            z0 += v["opening.bias"]
        else:
            Yx, z0 = None, np.asarray(x, dtype=float)
        if self.opening_activation is None:
            u0, z0 = z0, None
        else:
            u0 = self.opening_activation(z0)
        state = self.scheme.start(u0)
        states, records = [state], []
        for k in range(self.N):
            state, record = self.scheme.step(k, state, self._layer(v, k))
            if store:
                states.append(state)
                records.append(record)
        uN = self.scheme.finish(state)
        return uN, (Trajectory(states, records, Yx, z0) if store else None)

    def tlm(self, theta: np.ndarray, traj: Trajectory,
            theta_dot: np.ndarray) -> tuple[np.ndarray, Trajectory]:
        r"""Tangent-linear sweep: return :math:`\dot u_N` and the stored tangent states and
        records."""
        v, vd = self.layout.views(theta), self.layout.views(theta_dot)
        if self.lift:
            u0_dot = self._opening_tlm(vd, traj)
            if traj.opening is not None:
                u0_dot *= self.opening_activation.derivative(traj.opening)
            sd = self.scheme.start(u0_dot)
        else:  # the input is data: its tangent is zero
            sd = tuple(np.zeros_like(a) for a in traj.states[0])
        tlm_states, tlm_records = [sd], []
        for k in range(self.N):
            sd, rec = self.scheme.step_tlm(k, traj.states[k], traj.records[k], self._layer(v, k),
                                           sd, self._layer(vd, k))
            tlm_states.append(sd)
            tlm_records.append(rec)
        return self.scheme.finish(sd), Trajectory(tlm_states, tlm_records, None, None)

    def adjoint(self, theta: np.ndarray, traj: Trajectory,
                lam_N: np.ndarray) -> tuple[np.ndarray, Adjoints]:
        r"""Adjoint sweep from :math:`\lambda_N`: return :math:`\bar\theta` and the stored
        :class:`Adjoints` (:math:`\lambda_{k+1}`, the input of layer k's adjoint, and
        :math:`\lambda_0`)."""
        v = self.layout.views(theta)
        grad = np.zeros(self.layout.size)
        g = self.layout.views(grad)
        lam = self.scheme.finish_adjoint(traj.states[-1], lam_N)
        lams = [None] * self.N
        for k in reversed(range(self.N)):
            lams[k] = lam
            lam, th_bar = self.scheme.step_adjoint(k, traj.states[k], traj.records[k],
                                                   self._layer(v, k), lam)
            self._store(g, k, th_bar)
        lam0 = self.scheme.start_adjoint(lam)
        if self.lift:
            z0_bar = lam0 if traj.opening is None else \
                lam0 * self.opening_activation.derivative(traj.opening)
            self._opening_adjoint(g, traj, z0_bar)
        self.comm.Allreduce(MPI.IN_PLACE, grad, op=MPI.SUM)
        return grad, Adjoints(lams, lam0)

    def soa(self, theta: np.ndarray, traj: Trajectory, tlm_traj: Trajectory, lams: Adjoints,
            theta_dot: np.ndarray, mu_N: np.ndarray) -> np.ndarray:
        r"""Second-order adjoint sweep from :math:`\mu_N`: return :math:`\hat\theta`."""
        v, vd = self.layout.views(theta), self.layout.views(theta_dot)
        hess = np.zeros(self.layout.size)
        h = self.layout.views(hess)
        mu = self.scheme.finish_adjoint(traj.states[-1], mu_N)
        for k in reversed(range(self.N)):
            mu, th_hat = self.scheme.step_soa(
                k, traj.states[k], traj.records[k], self._layer(v, k), tlm_traj.states[k],
                tlm_traj.records[k], self._layer(vd, k), lams.layers[k], mu)
            self._store(h, k, th_hat)
        if self.lift:
            mu0 = self.scheme.start_adjoint(mu)
            if traj.opening is None:
                z0_hat = mu0  # z0 is linear in (W0, b0) for fixed data
            else:
                _, d1, d2 = self.opening_activation.jet(traj.opening)
                z0_hat = d1 * mu0 + d2 * self._opening_tlm(vd, traj) * lams.opening
            self._opening_adjoint(h, traj, z0_hat)
        self.comm.Allreduce(MPI.IN_PLACE, hess, op=MPI.SUM)
        return hess

    def _opening_tlm(self, vd, traj):
        r""":math:`\dot z_0 = \sum_s D_s x\,\dot\Theta_{0,s}^T + \dot b_0`."""
        z0_dot = mix(traj.spread, vd["opening.weight"])
        z0_dot += vd["opening.bias"]
        return z0_dot

    def _opening_adjoint(self, g, traj, z0_bar):
        g["opening.weight"][...] = np.swapaxes(contract(traj.spread, z0_bar), 1, 2)
        g["opening.bias"][...] = channel_sums(z0_bar)
