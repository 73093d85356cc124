r"""The right-hand sides :math:`F(u;\theta)` of the layer ODEs, with their exact derivatives.

With :math:`L(u;\Theta) = \sum_s D_s u \Theta_s^T` (see :mod:`pdeopt.model.stencil`) and
:math:`z = L(u;\Theta) + b`:

- :class:`ResNetForcing`: :math:`F(u) = \sigma(z)` (Euler step: ResNet);
- :class:`SymmetricForcing`: :math:`F(u) = -K^*\sigma(z)` with
  :math:`K^* a = \sum_s M^{-1} D_s^T M\, a\, \Theta_s`, the adjoint of :math:`L` in the
  lumped-mass inner product; for monotone :math:`\sigma` the flow is dissipative
  (Ruthotto & Haber 2020).

Each forcing is a :class:`Forcing` with four kernels that take the states they need as
arguments and keep nothing between calls (DESIGN.md §2):

- ``__call__(u, th) -> (F, z)``
- ``tlm(u, z, th, u_dot, th_dot) -> (F_dot, z_dot)``
- ``adjoint(u, z, th, F_bar) -> (u_bar, th_bar)``, the transposes of the two Jacobians
- ``soa(u, z, th, u_dot, z_dot, th_dot, F_bar, F_hat) -> (u_hat, th_hat)``, the tangent of
  ``adjoint`` in the direction ``(u_dot, th_dot, F_hat)``: the second-order adjoint.

Sums over points in ``th_bar`` are local to this rank; the caller reduces them.
"""

import abc

import numpy as np

from pdeopt.data.validation import shown
from pdeopt.errors import InputError
from pdeopt.model.activation import Activation, check_activation
from pdeopt.model.control import LayerControl
from pdeopt.model.operators import OperatorSet
from pdeopt.model.stencil import channel_sums

__all__ = ["Forcing", "ResNetForcing", "SymmetricForcing"]


def _T(W):
    """:math:`\\Theta_s \\mapsto \\Theta_s^T` for every s."""
    return np.swapaxes(W, 1, 2)


class Forcing(abc.ABC):
    r"""A right-hand side :math:`F(u;\theta)` built on the pre-activation
    :math:`z = L(u;\Theta) + b`, with its four kernels.

    Parameters
    ----------
    operators
        The assembled :class:`~pdeopt.model.operators.OperatorSet` (:math:`D_s`, :math:`M`).
    activation
        A :math:`C^2` :class:`~pdeopt.model.activation.Activation` :math:`\sigma`.
    owner
        The name errors give for the object that builds the forcing (a scheme); the forcing's
        class by default.
    """

    def __init__(self, operators: OperatorSet, activation: Activation, *,
                 owner: str | None = None):
        owner = owner or type(self).__name__
        if not isinstance(operators, OperatorSet):
            raise InputError(f"{owner}: operators={shown(operators)} must be an OperatorSet; build "
                             f"it with pdeopt.assemble_operators(grid).")
        self.ops = operators
        self.sigma = check_activation(owner, "activation", activation)

    @abc.abstractmethod
    def __call__(self, u: np.ndarray, th: LayerControl) -> tuple[np.ndarray, np.ndarray]:
        """Return :math:`(F(u;\theta), z)`."""

    @abc.abstractmethod
    def tlm(self, u: np.ndarray, z: np.ndarray, th: LayerControl, u_dot: np.ndarray,
            th_dot: LayerControl) -> tuple[np.ndarray, np.ndarray]:
        r"""Return :math:`(\dot F, \dot z)`, :math:`\dot F = F_u\dot u + F_\theta\dot\theta`."""

    @abc.abstractmethod
    def adjoint(self, u: np.ndarray, z: np.ndarray, th: LayerControl,
                F_bar: np.ndarray) -> tuple[np.ndarray, LayerControl]:
        r"""Return :math:`(F_u^T\bar F, F_\theta^T\bar F)` (control sums local to this rank)."""

    @abc.abstractmethod
    def soa(self, u: np.ndarray, z: np.ndarray, th: LayerControl, u_dot: np.ndarray,
            z_dot: np.ndarray, th_dot: LayerControl, F_bar: np.ndarray,
            F_hat: np.ndarray) -> tuple[np.ndarray, LayerControl]:
        r"""Return :math:`(\hat u, \hat\theta)`, the tangent of :meth:`adjoint` in the direction
        :math:`(\dot u, \dot\theta, \hat F)`."""

    def preactivation(self, u: np.ndarray, th: LayerControl) -> np.ndarray:
        """:math:`z = L(u;\\Theta) + b`."""
        return self.ops.forward.apply(u, th.weight, bias=th.bias)

    def preactivation_tlm(self, u: np.ndarray, th: LayerControl, u_dot: np.ndarray,
                          th_dot: LayerControl) -> np.ndarray:
        r""":math:`\dot z = L(\dot u;\Theta) + L(u;\dot\Theta) + \dot b`."""
        z_dot = self.ops.forward.apply(u_dot, th.weight, bias=th_dot.bias)
        return self.ops.forward.apply(u, th_dot.weight, out=z_dot)

    def preactivation_adjoint(self, u: np.ndarray, th: LayerControl,
                              z_bar: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""Transpose of :math:`(u, \Theta, b) \mapsto z`:
        :math:`\bar u = \sum_s D_s^T \bar z \Theta_s`, :math:`\bar\Theta_s = (D_s^T \bar z)^T u`,
        :math:`\bar b = \sum \bar z`, in one pass over :math:`\bar z`. Returns
        :math:`(\bar u, \bar\Theta, \bar b)`."""
        u_bar, W_bar = self.ops.transpose.apply_contract(z_bar, _T(th.weight), u)
        return u_bar, W_bar, channel_sums(z_bar)

    def preactivation_soa(self, u: np.ndarray, th: LayerControl, u_dot: np.ndarray,
                          th_dot: LayerControl, z_bar: np.ndarray,
                          zeta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""The tangent of :math:`\bar z \mapsto (\bar u, \bar\Theta, \bar b)` in the direction
        :math:`(\dot u, \dot\Theta)` with :math:`\zeta` the tangent of :math:`\bar z`:

        .. math:: \hat u = \sum_s D_s^T\zeta\,\Theta_s + D_s^T\bar z\,\dot\Theta_s, \quad
           \hat\Theta_s = (D_s^T\zeta)^T u + (D_s^T\bar z)^T\dot u, \quad
           \hat b = \textstyle\sum\zeta.

        Returns :math:`(\hat u, \hat\Theta, \hat b)`.
        """
        u_hat, W_hat, b_hat = self.preactivation_adjoint(u, th, zeta)
        _, W_hat2 = self.ops.transpose.apply_contract(z_bar, _T(th_dot.weight), u_dot,
                                                      out=u_hat)
        W_hat += W_hat2
        return u_hat, W_hat, b_hat


class ResNetForcing(Forcing):
    r""":math:`F(u;\theta) = \sigma(L(u;\Theta) + b)`."""

    def __call__(self, u, th):
        z = self.preactivation(u, th)
        return self.sigma(z), z

    def tlm(self, u, z, th, u_dot, th_dot):
        z_dot = self.preactivation_tlm(u, th, u_dot, th_dot)
        return self.sigma.derivative(z) * z_dot, z_dot

    def adjoint(self, u, z, th, F_bar):
        z_bar = self.sigma.derivative(z) * F_bar
        u_bar, W_bar, b_bar = self.preactivation_adjoint(u, th, z_bar)
        return u_bar, LayerControl(W_bar, b_bar)

    def soa(self, u, z, th, u_dot, z_dot, th_dot, F_bar, F_hat):
        _, d1, d2 = self.sigma.jet(z)
        z_bar = d1 * F_bar
        zeta = d2 * z_dot * F_bar + d1 * F_hat
        u_hat, W_hat, b_hat = self.preactivation_soa(u, th, u_dot, th_dot, z_bar, zeta)
        return u_hat, LayerControl(W_hat, b_hat)


class SymmetricForcing(Forcing):
    r""":math:`F(u;\theta) = -K^*\sigma(L(u;\Theta) + b)`,
    :math:`K^* a = \sum_s A_s a\,\Theta_s` with :math:`A_s = M^{-1} D_s^T M`, the adjoint of
    :math:`D_s` in the lumped-mass inner product.

    Writing :math:`P(a;\Theta) = K^* a`, its Euclidean transposes are
    :math:`P_a^T w = \sum_s A_s^T w\,\Theta_s^T` and
    :math:`P_\Theta^T(a, w)_s = (A_s^T w)^T a` transposed, with
    :math:`A_s^T = M D_s M^{-1}`: the stacks :attr:`OperatorSet.mass_adjoint` and
    :attr:`OperatorSet.mass_adjoint_transpose`, whose entries carry the mass scalings.
    """

    def __init__(self, operators: OperatorSet, activation: Activation, *,
                 owner: str | None = None):
        super().__init__(operators, activation, owner=owner)
        self.A = operators.mass_adjoint
        self.AT = operators.mass_adjoint_transpose

    def __call__(self, u, th):
        z = self.preactivation(u, th)
        return self.A.apply(self.sigma(z), -_T(th.weight)), z

    def tlm(self, u, z, th, u_dot, th_dot):
        z_dot = self.preactivation_tlm(u, th, u_dot, th_dot)
        a, d1, _ = self.sigma.jet(z)
        F_dot = self.A.apply(d1 * z_dot, -_T(th.weight))
        self.A.apply(a, -_T(th_dot.weight), out=F_dot)
        return F_dot, z_dot

    def adjoint(self, u, z, th, F_bar):
        a, d1, _ = self.sigma.jet(z)
        a_bar, G = self.AT.apply_contract(F_bar, -th.weight, a)
        z_bar = d1 * a_bar
        u_bar, W_bar, b_bar = self.preactivation_adjoint(u, th, z_bar)
        W_bar -= _T(G)
        return u_bar, LayerControl(W_bar, b_bar)

    def soa(self, u, z, th, u_dot, z_dot, th_dot, F_bar, F_hat):
        a, d1, d2 = self.sigma.jet(z)
        a_bar, G1 = self.AT.apply_contract(F_bar, -th.weight, d1 * z_dot)
        a_hat, G2 = self.AT.apply_contract(F_hat, -th.weight, a)
        self.AT.apply(F_bar, -th_dot.weight, out=a_hat)
        z_bar = d1 * a_bar
        zeta = d2 * z_dot * a_bar + d1 * a_hat
        u_hat, W_hat, b_hat = self.preactivation_soa(u, th, u_dot, th_dot, z_bar, zeta)
        W_hat -= _T(G1 + G2)
        return u_hat, LayerControl(W_hat, b_hat)
