r"""Right-hand sides :math:`F(u, v;\theta)` of delay equations, with their exact derivatives.

A delay layer (:class:`~pdeopt.model.schemes.delay.DelayScheme`) steps
:math:`u_{k+1} = u_k + hF(u_k, v_k;\theta)` with :math:`v_k` the delayed state
:math:`u(t_k - \tau)`. Its forcing is a :class:`DelayForcing`, four kernels that see the present
and the delayed state and keep nothing between calls (DESIGN.md §2):

- ``__call__(u, v, th) -> (F, z)``, ``z`` the record the derivatives need;
- ``tlm(u, v, z, th, u_dot, v_dot, th_dot) -> (F_dot, z_dot)``;
- ``adjoint(u, v, z, th, F_bar) -> (u_bar, v_bar, th_bar)``, the transposed Jacobians
  (``u_bar`` is ``None`` when :math:`F` does not depend on :math:`u`);
- ``soa(u, v, z, th, u_dot, v_dot, z_dot, th_dot, F_bar, F_hat) -> (u_hat, v_hat, th_hat)``,
  the tangent of ``adjoint`` in the direction ``(u_dot, v_dot, th_dot, F_hat)``.

:class:`DelayedPerceptron` is the learned law; :class:`MackeyGlassLaw` and
:class:`HutchinsonLaw` are the known laws the delay data come from (no controls). Sums over
points in ``th_bar`` are local to this rank; the network reduces them.
"""

import abc
from collections import namedtuple

import numpy as np

from pdeopt.checks import integer, real
from pdeopt.data.validation import shown
from pdeopt.errors import InputError
from pdeopt.model.activation import Activation, check_activation
from pdeopt.model.operators import OperatorSet
from pdeopt.model.stencil import channel_sums

__all__ = ["DelayForcing", "DelayedPerceptron", "LinearDelayLaw", "MackeyGlassLaw",
           "HutchinsonLaw", "HybridDelayLaw"]

#: No controls: the control of a known law.
NoControl = namedtuple("NoControl", [])


def _T(W):
    return np.swapaxes(W, 1, 2)


def _rows(a):
    """A block ``(n, batch, c)`` as the matrix ``(n batch, c)`` (a view)."""
    return a.reshape(-1, a.shape[-1])


class DelayForcing(abc.ABC):
    r"""A right-hand side :math:`F(u, v;\theta)` of a delay equation and its four kernels.

    Parameters
    ----------
    operators
        The assembled :class:`~pdeopt.model.operators.OperatorSet` the law acts with.
    owner
        The name errors give for the object that builds the forcing.
    """

    #: The namedtuple of a control; its fields are those of :meth:`control_blocks`.
    control_type = NoControl

    def __init__(self, operators: OperatorSet, *, owner: str | None = None):
        owner = owner or type(self).__name__
        if not isinstance(operators, OperatorSet):
            raise InputError(f"{owner}: operators={shown(operators)} must be an OperatorSet; build "
                             f"it with pdeopt.assemble_operators(domain).")
        self.ops = operators

    def control_blocks(self, channels: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """``(field, shape)`` of the controls, in the order of :attr:`control_type`."""
        return ()

    def initial_controls(self, rng: np.random.Generator, scale: float,
                         channels: int) -> list[np.ndarray]:
        """Initial controls in the order of :meth:`control_blocks`."""
        return []

    @abc.abstractmethod
    def __call__(self, u: np.ndarray, v: np.ndarray, th) -> tuple[np.ndarray, object]:
        """Return :math:`(F(u, v;\\theta), z)`."""

    @abc.abstractmethod
    def tlm(self, u, v, z, th, u_dot, v_dot, th_dot) -> tuple[np.ndarray, object]:
        r"""Return :math:`(\dot F, \dot z)`,
        :math:`\dot F = F_u\dot u + F_v\dot v + F_\theta\dot\theta`."""

    @abc.abstractmethod
    def adjoint(self, u, v, z, th, F_bar) -> tuple[np.ndarray | None, np.ndarray, tuple]:
        r"""Return :math:`(F_u^T\bar F, F_v^T\bar F, F_\theta^T\bar F)`."""

    @abc.abstractmethod
    def soa(self, u, v, z, th, u_dot, v_dot, z_dot, th_dot, F_bar,
            F_hat) -> tuple[np.ndarray | None, np.ndarray, tuple]:
        r"""Return :math:`(\hat u, \hat v, \hat\theta)`, the tangent of :meth:`adjoint` in the
        direction :math:`(\dot u, \dot v, \dot\theta, \hat F)`."""


class DelayedPerceptron(DelayForcing):
    r"""The learned delay law: one hidden layer of width :math:`H` on the present and the
    delayed state,

    .. math:: z = L(u; A) + L(v; B) + b, \qquad F(u, v;\theta) = \sigma(z)E^T + c,

    :math:`L(u; A) = \sum_s D_s u A_s^T` the layer's stencil mix (:mod:`pdeopt.model.stencil`;
    on a :class:`~pdeopt.model.point.PointDomain` the identity, :math:`uA^T`), :math:`A_s, B_s`
    :math:`H \times C`, :math:`E` :math:`C \times H`. With ``hidden=None`` there is no output
    layer, :math:`H = C` and :math:`F = \sigma(z)`; with ``present=False`` there is no
    :math:`A`, :math:`F = F(v)` (Zhu, Guo & Lin's :math:`x' = f(x(t - \tau))`). A delay of 0
    with both makes the layer the ResNet step :math:`u + h\sigma(L(u;B) + b)`.

    Adjoint, with :math:`\bar a = \bar F E` and :math:`\bar z = \sigma'(z)\bar a`:
    :math:`\bar u = \sum_s D_s^T\bar z A_s`, :math:`\bar v = \sum_s D_s^T\bar z B_s`,
    :math:`\bar A_s = (D_s^T\bar z)^T u`, :math:`\bar B_s = (D_s^T\bar z)^T v`,
    :math:`\bar b = \sum\bar z`, :math:`\bar E = \bar F^T\sigma(z)`, :math:`\bar c = \sum\bar F`.

    Parameters
    ----------
    operators
        The :class:`~pdeopt.model.operators.OperatorSet`.
    activation
        A :math:`C^2` :class:`~pdeopt.model.activation.Activation` :math:`\sigma`.
    hidden
        The width :math:`H \ge 1` of the hidden layer, or ``None`` for none.
    present
        Whether :math:`F` sees the present state :math:`u` as well as :math:`v`.
    """

    def __init__(self, operators: OperatorSet, activation: Activation, hidden: int | None = None,
                 *, present: bool = True, owner: str | None = None):
        owner = owner or type(self).__name__
        super().__init__(operators, owner=owner)
        self.sigma = check_activation(owner, "activation", activation)
        self.H = None if hidden is None else integer(
            owner, "hidden", hidden, low=1, remedy="the hidden layer has at least one unit, or "
                                                   "pass hidden=None for F = sigma(z)")
        if not isinstance(present, (bool, np.bool_)):
            raise InputError(f"{owner}: present={shown(present)} must be True or False.")
        self.present = bool(present)
        self.fields = (("A",) if self.present else ()) + ("B", "b") + \
            (("E", "c") if self.H is not None else ())
        self.control_type = namedtuple("DelayedPerceptronControl", self.fields)

    def control_blocks(self, channels):
        S, C = self.ops.S, channels
        H = C if self.H is None else self.H
        shapes = {"A": (S, H, C), "B": (S, H, C), "b": (H,), "E": (C, H), "c": (C,)}
        return tuple((f, shapes[f]) for f in self.fields)

    def initial_controls(self, rng, scale, channels):
        r"""Stencil mixes normal with variance :math:`\text{scale}^2/(SC)` (fan-in :math:`SC`,
        halved variance when both :math:`A` and :math:`B` feed :math:`z`), :math:`E` with
        variance :math:`\text{scale}^2/H`, biases zero."""
        out = []
        fan_in = self.ops.S * channels * (2 if self.present else 1)
        for field, shape in self.control_blocks(channels):
            if field in ("A", "B"):
                out.append(scale / np.sqrt(fan_in) * rng.standard_normal(shape))
            elif field == "E":
                out.append(scale / np.sqrt(shape[1]) * rng.standard_normal(shape))
            else:
                out.append(np.zeros(shape))
        return out

    def _out(self, a, th):
        """:math:`aE^T + c`, or :math:`a` without an output layer."""
        if self.H is None:
            return a
        F = (_rows(a) @ th.E.T).reshape(a.shape[:-1] + (th.E.shape[0],))
        F += th.c
        return F

    def _z(self, u, v, th):
        z = self.ops.forward.apply(v, th.B, bias=th.b)
        if self.present:
            self.ops.forward.apply(u, th.A, out=z)
        return z

    def __call__(self, u, v, th):
        z = self._z(u, v, th)
        return self._out(self.sigma(z), th), z

    def tlm(self, u, v, z, th, u_dot, v_dot, th_dot):
        fw = self.ops.forward
        z_dot = fw.apply(v_dot, th.B, bias=th_dot.b)
        fw.apply(v, th_dot.B, out=z_dot)
        if self.present:
            fw.apply(u_dot, th.A, out=z_dot)
            fw.apply(u, th_dot.A, out=z_dot)
        a, d1, _ = self.sigma.jet(z)
        a_dot = d1 * z_dot
        if self.H is None:
            return a_dot, z_dot
        # (a E^T + c)' = a_dot E^T + a E_dot^T + c_dot
        F_dot = (_rows(a_dot) @ th.E.T + _rows(a) @ th_dot.E.T + th_dot.c).reshape(
            a.shape[:-1] + (th.E.shape[0],))
        return F_dot, z_dot

    def _a_bar(self, a, th, F_bar):
        r""":math:`\bar a = \bar F E`, :math:`\bar E = \bar F^T a`, :math:`\bar c = \sum\bar F`."""
        if self.H is None:
            return F_bar, {}
        a_bar = (_rows(F_bar) @ th.E).reshape(a.shape)
        return a_bar, {"E": _rows(F_bar).T @ _rows(a), "c": channel_sums(F_bar)}

    def _linear_adjoint(self, z_bar, th):
        """:math:`\\bar v, \\bar B` (and :math:`\\bar u, \\bar A` if present) of ``z_bar``."""
        raise NotImplementedError

    def adjoint(self, u, v, z, th, F_bar):
        a, d1, _ = self.sigma.jet(z)
        a_bar, out = self._a_bar(a, th, F_bar)
        z_bar = d1 * a_bar
        tr = self.ops.transpose
        v_bar, out["B"] = tr.apply_contract(z_bar, _T(th.B), v)
        u_bar = None
        if self.present:
            u_bar, out["A"] = tr.apply_contract(z_bar, _T(th.A), u)
        out["b"] = channel_sums(z_bar)
        return u_bar, v_bar, self.control_type(**out)

    def soa(self, u, v, z, th, u_dot, v_dot, z_dot, th_dot, F_bar, F_hat):
        a, d1, d2 = self.sigma.jet(z)
        a_dot = d1 * z_dot
        a_bar, _ = self._a_bar(a, th, F_bar)
        # the tangent of a_bar = F_bar E and of (E_bar, c_bar)
        zeta_a, out = self._a_bar(a, th, F_hat)
        if self.H is not None:
            zeta_a += (_rows(F_bar) @ th_dot.E).reshape(a.shape)
            out["E"] += _rows(F_bar).T @ _rows(a_dot)
        z_bar = d1 * a_bar
        zeta = d2 * z_dot * a_bar
        zeta += d1 * zeta_a
        tr = self.ops.transpose
        # the tangent of (x_bar, W_bar) = (sum_s D_s^T z_bar W_s, (D_s^T z_bar)^T x)
        v_hat, out["B"] = tr.apply_contract(zeta, _T(th.B), v)
        _, G = tr.apply_contract(z_bar, _T(th_dot.B), v_dot, out=v_hat)
        out["B"] += G
        u_hat = None
        if self.present:
            u_hat, out["A"] = tr.apply_contract(zeta, _T(th.A), u)
            _, G = tr.apply_contract(z_bar, _T(th_dot.A), u_dot, out=u_hat)
            out["A"] += G
        out["b"] = channel_sums(zeta)
        return u_hat, v_hat, self.control_type(**out)


class LinearDelayLaw(DelayForcing):
    r"""The linear delay equation :math:`F(x, x_\tau) = -a x - b x_\tau`, pointwise, no
    controls: stable exactly for :math:`\tau < \arccos(-a/b)/\sqrt{b^2 - a^2}` when
    :math:`b > |a|` (:class:`~pdeopt.analysis.lyapunov_krasovskii.LinearDelayEquation`).

    Parameters
    ----------
    operators
        The :class:`~pdeopt.model.operators.OperatorSet` of the domain.
    a, b
        The real coefficients.
    """

    def __init__(self, operators: OperatorSet, a: float, b: float):
        super().__init__(operators)
        self.a, self.b = (real(type(self).__name__, name, value,
                               remedy="the coefficients are finite reals")
                          for name, value in (("a", a), ("b", b)))

    def __call__(self, u, v, th):
        return -self.a * u - self.b * v, None

    def tlm(self, u, v, z, th, u_dot, v_dot, th_dot):
        return -self.a * u_dot - self.b * v_dot, None

    def adjoint(self, u, v, z, th, F_bar):
        return -self.a * F_bar, -self.b * F_bar, NoControl()

    def soa(self, u, v, z, th, u_dot, v_dot, z_dot, th_dot, F_bar, F_hat):
        return -self.a * F_hat, -self.b * F_hat, NoControl()


class MackeyGlassLaw(DelayForcing):
    r"""Mackey–Glass: :math:`F(x, x_\tau) = \beta x_\tau/(1 + x_\tau^n) - \gamma x`, pointwise,
    no controls (Mackey & Glass 1977; periodic at :math:`\tau = 10`, chaotic at
    :math:`\tau = 17` for the defaults).

    Parameters
    ----------
    operators
        The :class:`~pdeopt.model.operators.OperatorSet` of the domain (a
        :class:`~pdeopt.model.point.PointDomain` for the ODE).
    beta, gamma, n
        The production rate, the decay rate and the Hill exponent, finite and positive.
    """

    def __init__(self, operators: OperatorSet, beta: float = 0.2, gamma: float = 0.1,
                 n: float = 10.0):
        super().__init__(operators)
        self.beta, self.gamma, self.n = (
            real(type(self).__name__, name, value, low=0.0, low_open=True,
                 remedy="the Mackey-Glass rates and exponent are positive")
            for name, value in (("beta", beta), ("gamma", gamma), ("n", n)))

    def _hill(self, v):
        """:math:`w = |v|^n` and :math:`g'(v) = \beta(1 + (1 - n)w)/(1 + w)^2`."""
        w = np.abs(v) ** self.n
        return w, self.beta * (1.0 + (1.0 - self.n) * w) / (1.0 + w) ** 2

    def __call__(self, u, v, th):
        return self.beta * v / (1.0 + np.abs(v) ** self.n) - self.gamma * u, None

    def tlm(self, u, v, z, th, u_dot, v_dot, th_dot):
        return self._hill(v)[1] * v_dot - self.gamma * u_dot, None

    def adjoint(self, u, v, z, th, F_bar):
        return -self.gamma * F_bar, self._hill(v)[1] * F_bar, NoControl()

    def soa(self, u, v, z, th, u_dot, v_dot, z_dot, th_dot, F_bar, F_hat):
        n = self.n
        w, dg = self._hill(v)
        # g'' = d/dv of g', with dw/dv = n |v|^(n-1) sign(v)
        dw = n * np.abs(v) ** (n - 1.0) * np.sign(v)
        d2g = self.beta * dw * ((1.0 - n) * (1.0 + w) - 2.0 * (1.0 + (1.0 - n) * w)) / \
            (1.0 + w) ** 3
        return -self.gamma * F_hat, dg * F_hat + d2g * v_dot * F_bar, NoControl()


class HutchinsonLaw(DelayForcing):
    r"""The delayed logistic reaction–diffusion (Hutchinson) equation
    :math:`F(u, v) = D\Delta u + r u(1 - v)`, :math:`v = u(t - \tau)`, no controls.

    :math:`\Delta` is the lumped-mass :math:`P_1` Laplacian with natural (Neumann) boundary
    conditions, the ``"laplace"`` operator of the :class:`~pdeopt.model.operators.OperatorSet`
    divided by the :attr:`~pdeopt.model.operators.OperatorSet.length_scales` it carries. The
    homogeneous state :math:`u = 1` is stable for :math:`r\tau < \pi/2` and loses stability
    in a Hopf bifurcation at :math:`r\tau = \pi/2` (the spatially constant mode is the
    critical one).

    Parameters
    ----------
    operators
        An :class:`~pdeopt.model.operators.OperatorSet` whose basis holds ``"laplace"``.
    diffusivity, rate
        :math:`D \ge 0` and :math:`r \ge 0` (:math:`r = 0`: the diffusion alone, the known
        part of a :class:`HybridDelayLaw`).
    """

    def __init__(self, operators: OperatorSet, diffusivity: float = 0.01, rate: float = 1.0):
        owner = type(self).__name__
        super().__init__(operators, owner=owner)
        if "laplace" not in operators.names:
            raise InputError(f"{owner}: the operators {list(operators.names)} have no "
                             f"'laplace'; assemble them with basis=('I', 'laplace').")
        self.D = real(owner, "diffusivity", diffusivity, low=0.0,
                      remedy="a diffusivity is non-negative")
        self.r = real(owner, "rate", rate, low=0.0,
                      remedy="the growth rate r is non-negative (0: diffusion alone)")
        s = operators.names.index("laplace")
        hx, hy = operators.length_scales
        # L(u; Phi) with Phi = (D / (hx hy)) e_laplace: the pixel-unit Laplacian rescaled
        self._phi = np.zeros((operators.S, 1, 1))
        self._phi[s] = self.D / (hx * hy)

    def _laplace(self, u, out, stack=None):
        r""":math:`D\Delta u` added to ``out`` (with ``stack=ops.transpose``, its transpose),
        every sample and channel as one column of the stencil kernel."""
        n, B, C = u.shape
        stack = stack or self.ops.forward
        return stack.apply(u.reshape(n, B * C, 1), self._phi,
                           out=out.reshape(n, B * C, 1)).reshape(u.shape)

    def __call__(self, u, v, th):
        F = self.r * u * (1.0 - v)
        return self._laplace(u, F), None

    def tlm(self, u, v, z, th, u_dot, v_dot, th_dot):
        F_dot = self.r * (u_dot * (1.0 - v) - u * v_dot)
        return self._laplace(u_dot, F_dot), None

    def adjoint(self, u, v, z, th, F_bar):
        u_bar = self.r * (1.0 - v) * F_bar
        return self._laplace(F_bar, u_bar, self.ops.transpose), -self.r * u * F_bar, NoControl()

    def soa(self, u, v, z, th, u_dot, v_dot, z_dot, th_dot, F_bar, F_hat):
        u_hat = self.r * ((1.0 - v) * F_hat - v_dot * F_bar)
        v_hat = -self.r * (u * F_hat + u_dot * F_bar)
        return self._laplace(F_hat, u_hat, self.ops.transpose), v_hat, NoControl()


class HybridDelayLaw(DelayForcing):
    r"""A known law plus a learned term, :math:`F(u, v;\theta) = G(u, v) + f_\theta(u, v)`:
    a hybrid model (the Hutchinson equation's diffusion known, its reaction learned).

    The kernels are the sums of the two forcings'; the controls are the learned term's.

    Parameters
    ----------
    known
        A control-free :class:`DelayForcing` :math:`G` (e.g. a :class:`HutchinsonLaw` with
        ``rate`` the reaction to drop, or its diffusion alone).
    learned
        A :class:`DelayForcing` :math:`f_\theta` on the same points (its operators may be a
        different basis of the same mesh: a pointwise law uses ``basis=("I",)``).
    """

    def __init__(self, known: DelayForcing, learned: DelayForcing):
        owner = type(self).__name__
        for name, f in (("known", known), ("learned", learned)):
            if not isinstance(f, DelayForcing):
                raise InputError(f"{owner}: {name}={shown(f)} must be a DelayForcing.")
        if known.control_blocks(1):
            raise InputError(f"{owner}: the known law {type(known).__name__} has controls; "
                             f"put every learned term in `learned`.")
        if known.ops.n_owned != learned.ops.n_owned:
            raise InputError(f"{owner}: the two laws live on different points; assemble both "
                             f"operator sets on one mesh.")
        super().__init__(learned.ops, owner=owner)
        self.known, self.learned = known, learned
        self.control_type = learned.control_type

    def control_blocks(self, channels):
        return self.learned.control_blocks(channels)

    def initial_controls(self, rng, scale, channels):
        return self.learned.initial_controls(rng, scale, channels)

    @staticmethod
    def _add(a, b):
        return b if a is None else (a if b is None else a + b)

    def __call__(self, u, v, th):
        G, zg = self.known(u, v, None)
        F, zf = self.learned(u, v, th)
        F += G
        return F, (zg, zf)

    def tlm(self, u, v, z, th, u_dot, v_dot, th_dot):
        G, zg = self.known.tlm(u, v, z[0], None, u_dot, v_dot, None)
        F, zf = self.learned.tlm(u, v, z[1], th, u_dot, v_dot, th_dot)
        F += G
        return F, (zg, zf)

    def adjoint(self, u, v, z, th, F_bar):
        ug, vg, _ = self.known.adjoint(u, v, z[0], None, F_bar)
        uf, vf, th_bar = self.learned.adjoint(u, v, z[1], th, F_bar)
        return self._add(ug, uf), vg + vf, th_bar

    def soa(self, u, v, z, th, u_dot, v_dot, z_dot, th_dot, F_bar, F_hat):
        ug, vg, _ = self.known.soa(u, v, z[0], None, u_dot, v_dot, z_dot[0], None, F_bar,
                                   F_hat)
        uf, vf, th_hat = self.learned.soa(u, v, z[1], th, u_dot, v_dot, z_dot[1], th_dot, F_bar,
                                          F_hat)
        return self._add(ug, uf), vg + vf, th_hat
