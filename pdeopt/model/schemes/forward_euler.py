"""Forward Euler on the ResNet forcing: a residual network."""

from pdeopt.model.activation import Activation
from pdeopt.model.forcing import ResNetForcing
from pdeopt.model.operators import OperatorSet
from pdeopt.model.schemes.scheme import EulerScheme

__all__ = ["ForwardEulerScheme"]


class ForwardEulerScheme(EulerScheme):
    r"""ResNet: :math:`u_{k+1} = u_k + h\,\sigma(K_k u_k + b_k)`.

    Parameters
    ----------
    operators
        The assembled :class:`~pdeopt.model.operators.OperatorSet`.
    activation
        A :math:`C^2` :class:`~pdeopt.model.activation.Activation`.
    step
        The time step :math:`h = T/N`.
    """

    name = "forward_euler"

    def __init__(self, operators: OperatorSet, activation: Activation, step: float):
        super().__init__(ResNetForcing(operators, activation, owner=type(self).__name__), step)
