"""A network together with its readout: the whole map from data to loss."""

import numpy as np
from mpi4py import MPI

from pdeopt.model.network import Network
from pdeopt.model.readout import Readout

__all__ = ["Model"]


class Model:
    r"""The network :math:`x \mapsto u_N` and the readout :math:`u_N \mapsto \ell`.

    The controls are one flat vector: the network's blocks, then the readout's.

    Parameters
    ----------
    network
        A :class:`~pdeopt.model.network.Network`.
    readout
        A :class:`~pdeopt.model.readout.Readout`: a
        :class:`~pdeopt.model.readout.PooledClassifier`,
        :class:`~pdeopt.model.readout.ProbeRegression` or
        :class:`~pdeopt.model.readout.FieldMisfit`.
    """

    def __init__(self, network: Network, readout: Readout):
        self.network, self.readout = network, readout
        self.layout = network.layout + readout.layout

    @property
    def comm(self) -> MPI.Comm:
        """The spatial communicator (the network's)."""
        return self.network.comm

    def initial_controls(self, seed: int = 0, scale: float = 1.0,
                         readout_scale: float = 0.0) -> np.ndarray:
        """Seeded random controls, identical on every rank: the network's (its mixing matrices
        scaled by ``scale``), then the readout's (weights scaled by ``readout_scale``)."""
        rng = np.random.default_rng(seed)
        return np.concatenate([self.network.initial_controls(rng, scale),
                               self.readout.initial_controls(rng, readout_scale)])

    def output(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        """:math:`u_N` for the input block ``x`` (no tape)."""
        return self.network.forward(np.asarray(theta)[:self.network.layout.size], x,
                                    store=False)[0]

    def predict(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The readout's predictions: classes of a classifier, values of a regression."""
        return self.readout.predict(self.output(theta, x), self.layout.views(np.asarray(theta)))

    def probabilities(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(B, K)`` of a classifier model."""
        return self.readout.probabilities(self.output(theta, x),
                                          self.layout.views(np.asarray(theta)))

    def accuracy(self, theta: np.ndarray, x: np.ndarray, labels: np.ndarray) -> float:
        """Fraction of ``labels`` predicted correctly."""
        return float(np.mean(self.predict(theta, x) == np.asarray(labels)))
