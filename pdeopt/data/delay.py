r"""Trajectories of delay differential equations, integrated on the layer grid.

The method of steps with explicit Euler, :math:`u_{k+1} = u_k + hF(u_k, u_{k-m})`,
:math:`\tau = mh`, is exactly a network of :class:`~pdeopt.model.schemes.delay.DelayScheme`
layers with a control-free law (:class:`~pdeopt.model.delay_forcing.MackeyGlassLaw`,
:class:`~pdeopt.model.delay_forcing.HutchinsonLaw`), so the data and the learned models run
through the same kernels. The scheme is first order in :math:`h`
(``tests/test_delay_data.py`` measures it against jitcdde).
"""

import numpy as np

from pdeopt.checks import real
from pdeopt.errors import InputError
from pdeopt.model.delay_forcing import DelayForcing
from pdeopt.model.network import Network
from pdeopt.model.schemes.delay import DelayScheme

__all__ = ["integrate_delay"]


def integrate_delay(law: DelayForcing, u0: np.ndarray, step: float, delay: float,
                    final_time: float, *, history: np.ndarray | None = None) -> np.ndarray:
    r"""The states :math:`u_0, \dots, u_K` of :math:`u' = F(u, u(t - \tau))`, :math:`K =
    T/h`, by explicit Euler on the layer grid.

    Parameters
    ----------
    law
        A control-free :class:`~pdeopt.model.delay_forcing.DelayForcing`.
    u0
        The initial state, a block ``(n_owned, batch, C)``: the constant history
        :math:`u(t) = u_0`, :math:`t \le 0`, unless ``history`` is given.
    step
        :math:`h > 0`; :math:`\tau/h` and :math:`T/h` must be whole numbers (to 1e-9).
    delay, final_time
        :math:`\tau \ge 0` and :math:`T > \tau`.
    history
        Optionally the states :math:`u(-mh), \dots, u(-h)` before :math:`u_0`, oldest first,
        an array ``(m, n_owned, batch, C)``.

    Returns
    -------
    numpy.ndarray
        ``(K + 1, n_owned, batch, C)``.
    """
    owner = "integrate_delay"
    if not isinstance(law, DelayForcing) or law.control_blocks(1):
        raise InputError(f"{owner}: law={law!r} must be a DelayForcing without controls, e.g. "
                         f"pdeopt.MackeyGlassLaw(ops); a learned law runs through a Model.")
    h = real(owner, "step", step, low=0.0, low_open=True, remedy="the step is positive")
    tau = real(owner, "delay", delay, low=0.0, remedy="a delay is non-negative")
    T = real(owner, "final_time", final_time, low=0.0, low_open=True,
             remedy="integrate over a positive time")
    m, K = int(round(tau / h)), int(round(T / h))
    if abs(m * h - tau) > 1e-9 * max(tau, h) or abs(K * h - T) > 1e-9 * T:
        raise InputError(f"{owner}: delay={tau:g} and final_time={T:g} must be whole multiples "
                         f"of step={h:g} (the method of steps on the layer grid); choose "
                         f"step = delay / m.")
    u0 = np.asarray(u0, dtype=float)
    if u0.ndim != 3 or u0.shape[0] != law.ops.n_owned:
        raise InputError(f"{owner}: u0 must be a block (n_owned={law.ops.n_owned}, batch, C), "
                         f"got shape {u0.shape}.")
    x, mode = u0, "constant"
    if history is not None:
        history = np.asarray(history, dtype=float)
        if history.shape != (m,) + u0.shape:
            raise InputError(f"{owner}: history must hold the {m} states before u0, shape "
                             f"{(m,) + u0.shape}; got {history.shape}.")
        x = np.concatenate(list(history) + [u0], axis=-1)
        mode = "input"
    scheme = DelayScheme(law, h, m, history=mode)
    net = Network(scheme, channels=u0.shape[-1], depth=K, lift=False, autonomous=True)
    _, traj = net.forward(np.zeros(net.layout.size), x)
    return np.stack([state[-1] for state in traj.states])
