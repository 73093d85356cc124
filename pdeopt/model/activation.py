r"""Twice continuously differentiable activations :math:`\sigma` with :math:`\sigma'` and :math:`\sigma''`.

Hessians of the training problem exist only for :math:`C^2` activations, so ReLU is offered
in its smoothed form.
"""

import numpy as np

from pdeopt.errors import OptionError

__all__ = ["Activation", "Tanh", "Softplus", "SmoothReLU", "activation"]


class Activation:
    """An elementwise :math:`C^2` function with its first two derivatives (NumPy and torch)."""

    name = None

    def __call__(self, z):
        raise NotImplementedError

    def derivative(self, z):
        raise NotImplementedError

    def second_derivative(self, z):
        raise NotImplementedError

    def torch(self, z):
        """The same function on a torch tensor (for the torch twin)."""
        raise NotImplementedError

    def jet(self, z):
        """:math:`(\\sigma, \\sigma', \\sigma'')` at ``z`` together (one pass where possible)."""
        return self(z), self.derivative(z), self.second_derivative(z)

    def __repr__(self):
        return f"{type(self).__name__}()"


class Tanh(Activation):
    r""":math:`\sigma(z) = \tanh z`, :math:`\sigma' = 1 - \sigma^2`, :math:`\sigma'' = -2\sigma\sigma'`."""

    name = "tanh"

    def __call__(self, z):
        return np.tanh(z)

    def derivative(self, z):
        t = np.tanh(z)
        return 1.0 - t * t

    def second_derivative(self, z):
        t = np.tanh(z)
        return -2.0 * t * (1.0 - t * t)

    def torch(self, z):
        return z.tanh()

    def jet(self, z):
        t = np.tanh(z)
        d1 = 1.0 - t * t
        return t, d1, -2.0 * t * d1


class Softplus(Activation):
    r""":math:`\sigma(z) = \log(1 + e^z)`, :math:`\sigma' = \mathrm{logistic}(z)`, :math:`\sigma'' = \sigma'(1-\sigma')`."""

    name = "softplus"

    def __call__(self, z):
        return np.logaddexp(0.0, z)

    def derivative(self, z):
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    def second_derivative(self, z):
        p = self.derivative(z)
        return p * (1.0 - p)

    def torch(self, z):
        import torch
        return torch.nn.functional.softplus(z)


class SmoothReLU(Activation):
    r""":math:`\sigma(z) = \tfrac12\left(z + \sqrt{z^2 + \varepsilon^2}\right) - \tfrac{\varepsilon}{2}`: ReLU smoothed, :math:`\sigma(0) = 0`.

    :math:`\sigma' = \tfrac12(1 + z/r)`, :math:`\sigma'' = \varepsilon^2/(2r^3)`, :math:`r = \sqrt{z^2+\varepsilon^2}`.
    """

    name = "smoothrelu"

    def __init__(self, epsilon: float = 0.1):
        self.epsilon = float(epsilon)

    def __call__(self, z):
        return 0.5 * (z + np.sqrt(z * z + self.epsilon**2) - self.epsilon)

    def derivative(self, z):
        return 0.5 * (1.0 + z / np.sqrt(z * z + self.epsilon**2))

    def second_derivative(self, z):
        r = np.sqrt(z * z + self.epsilon**2)
        return 0.5 * self.epsilon**2 / (r * r * r)

    def torch(self, z):
        return 0.5 * (z + (z * z + self.epsilon**2).sqrt() - self.epsilon)

    def __repr__(self):
        return f"SmoothReLU(epsilon={self.epsilon})"


_BY_NAME = {"tanh": Tanh, "softplus": Softplus, "smoothrelu": SmoothReLU}


def activation(name: str | Activation) -> Activation:
    """The activation called ``name`` (``tanh``, ``softplus``, ``smoothrelu``)."""
    if isinstance(name, Activation):
        return name
    try:
        return _BY_NAME[name]()
    except KeyError:
        raise OptionError(f"unknown activation {name!r}; choose from {sorted(_BY_NAME)}.") from None
