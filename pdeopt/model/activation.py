r"""Twice continuously differentiable activations :math:`\sigma`, with :math:`\sigma'` and
:math:`\sigma''`.

Hessians of the training problem exist only for :math:`C^2` activations, so ReLU is offered
in its smoothed form. :data:`ACTIVATIONS` maps each :attr:`Activation.name` to its class.
"""

import abc

import numpy as np

from pdeopt.checks import real
from pdeopt.data.validation import shown
from pdeopt.errors import InputError, OptionError
from pdeopt.model.registry import Registry

__all__ = ["Activation", "Tanh", "Softplus", "SmoothReLU", "ACTIVATIONS", "activation_by_name",
           "check_activation"]


class Activation(abc.ABC):
    """An elementwise :math:`C^2` function with its first two derivatives (NumPy and torch)."""

    #: The key of the activation in :data:`ACTIVATIONS`.
    name: str = None

    @abc.abstractmethod
    def __call__(self, z: np.ndarray) -> np.ndarray:
        r""":math:`\sigma(z)`."""

    @abc.abstractmethod
    def derivative(self, z: np.ndarray) -> np.ndarray:
        r""":math:`\sigma'(z)`."""

    @abc.abstractmethod
    def second_derivative(self, z: np.ndarray) -> np.ndarray:
        r""":math:`\sigma''(z)`."""

    @abc.abstractmethod
    def torch(self, z):
        """The same function on a torch tensor (for the torch twin)."""

    def jet(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r""":math:`(\sigma, \sigma', \sigma'')` at ``z`` together (one pass where possible)."""
        return self(z), self.derivative(z), self.second_derivative(z)

    def __repr__(self):
        return f"{type(self).__name__}()"


class Tanh(Activation):
    r""":math:`\sigma(z) = \tanh z`, :math:`\sigma' = 1 - \sigma^2`,
    :math:`\sigma'' = -2\sigma\sigma'`."""

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
    r""":math:`\sigma(z) = \log(1 + e^z)`, :math:`\sigma' = \mathrm{logistic}(z)`,
    :math:`\sigma'' = \sigma'(1-\sigma')`."""

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
    r"""ReLU smoothed,
    :math:`\sigma(z) = \tfrac12\big(z + \sqrt{z^2 + \varepsilon^2}\big) - \tfrac{\varepsilon}{2}`,
    :math:`\sigma(0) = 0`.

    :math:`\sigma' = \tfrac12(1 + z/r)`, :math:`\sigma'' = \varepsilon^2/(2r^3)`,
    :math:`r = \sqrt{z^2+\varepsilon^2}`.

    Parameters
    ----------
    epsilon
        The smoothing width :math:`\varepsilon`, in :data:`EPSILON_RANGE`: positive, so that
        :math:`\sigma` is :math:`C^2`, and with :math:`\varepsilon^3` a normal double, so that
        :math:`\sigma''(0) = 1/(2\varepsilon)` is computed without under- or overflow.
    """

    name = "smooth_relu"
    #: The smoothing widths accepted.
    EPSILON_RANGE = (1e-100, 1e100)

    def __init__(self, epsilon: float = 0.1):
        low, high = self.EPSILON_RANGE
        self.epsilon = real("SmoothReLU", "epsilon", epsilon, low=low, high=high,
                            remedy="epsilon > 0 keeps sigma twice differentiable (0 is ReLU, "
                                   "which has no second derivative at 0); 0.1 is the default")

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


#: The activations by :attr:`Activation.name`.
ACTIVATIONS = Registry("activation", (Tanh, Softplus, SmoothReLU))


def activation_by_name(name: str | Activation) -> Activation:
    """The activation called ``name`` with its default parameters (a key of
    :data:`ACTIVATIONS`: ``tanh``, ``softplus``, ``smooth_relu``); an :class:`Activation` is
    returned as it is."""
    if isinstance(name, Activation):
        return name
    if name not in ACTIVATIONS:
        hint = " instance (call the class)" if isinstance(name, type) else ""
        raise OptionError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)} or "
                          f"pass an Activation{hint}.")
    return ACTIVATIONS[name]()


def check_activation(owner: str, name: str, value) -> Activation:
    """``value`` if it is an :class:`Activation` (an instance), else :class:`InputError` naming
    ``owner``'s argument ``name`` and how to make one."""
    if isinstance(value, Activation):
        return value
    if isinstance(value, type) and issubclass(value, Activation):
        remedy = f"call the class: {value.__name__}()"
    elif isinstance(value, str):
        remedy = f"build it by name: pdeopt.activation_by_name({value!r})"
    else:
        remedy = f"choose from {sorted(ACTIVATIONS)}, e.g. pdeopt.Tanh()"
    raise InputError(f"{owner}: {name}={shown(value)} must be an Activation instance; {remedy}.")
