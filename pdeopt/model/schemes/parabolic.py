"""The parabolic (symmetric) scheme: a stable forward-Euler step of a dissipative flow."""

from pdeopt.model.activation import Activation
from pdeopt.model.forcing import SymmetricForcing
from pdeopt.model.operators import OperatorSet
from pdeopt.model.schemes.scheme import EulerScheme

__all__ = ["ParabolicScheme"]


class ParabolicScheme(EulerScheme):
    r"""Parabolic network: :math:`u_{k+1} = u_k - h\,K_k^*\sigma(K_k u_k + b_k)`.

    :math:`K^*` is the adjoint of :math:`K` in the lumped-mass inner product. For monotone
    :math:`\sigma` the continuous flow is dissipative and the step is stable for
    :math:`h \le 2 / (\max\sigma' \|K_k\|_M^2)`, whatever the controls (Ruthotto & Haber 2020).

    Parameters
    ----------
    operators
        The assembled :class:`~pdeopt.model.operators.OperatorSet`.
    activation
        A :math:`C^2` :class:`~pdeopt.model.activation.Activation`.
    step
        The time step :math:`h = T/N`.
    """

    name = "parabolic"

    def __init__(self, operators: OperatorSet, activation: Activation, step: float):
        super().__init__(SymmetricForcing(operators, activation, owner=type(self).__name__), step)
