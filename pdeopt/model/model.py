"""A network together with its readout: the whole map from data to loss."""

import numpy as np
from mpi4py import MPI

from pdeopt.checks import real
from pdeopt.data.validation import check_finite, check_seed, real_array, shown
from pdeopt.errors import InputError
from pdeopt.model.network import Network
from pdeopt.model.readout import Readout
from pdeopt.parallel import raise_collectively

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
        :class:`~pdeopt.model.readout.FieldMisfit`, on the network's channels, points and
        communicator.
    """

    def __init__(self, network: Network, readout: Readout):
        if not isinstance(network, Network):
            raise InputError(f"Model: network={shown(network)} must be a Network; build one with "
                             f"pdeopt.Network(scheme, channels, depth).")
        if not isinstance(readout, Readout):
            raise InputError(f"Model: readout={shown(readout)} must be a Readout, e.g. "
                             f"pdeopt.PooledClassifier(grid, channels, classes).")
        channels = getattr(readout, "channels", None)
        if channels is not None and channels != network.C:
            raise InputError(f"Model: the readout reads {channels} channels but the network has "
                             f"{network.C}; build the readout with channels={network.C}.")
        if MPI.Comm.Compare(readout.comm, network.comm) not in (MPI.IDENT, MPI.CONGRUENT):
            raise InputError("Model: the readout's communicator is not the network's; build "
                             "the readout on the network's grid (or OperatorSet).")
        n = getattr(readout, "n_owned", None)
        error = None
        if n is not None and n != network.ops.n_owned:
            error = InputError(f"Model: the readout has {n} points on rank {network.comm.rank}, "
                               f"the network {network.ops.n_owned}; build both on the same "
                               f"grid.")
        raise_collectively(error, network.comm)
        self.network, self.readout = network, readout
        self.layout = network.layout + readout.layout

    @property
    def comm(self) -> MPI.Comm:
        """The spatial communicator (the network's)."""
        return self.network.comm

    def initial_controls(self, seed: int = 0, scale: float = 1.0,
                         readout_scale: float = 0.0) -> np.ndarray:
        """Seeded random controls, identical on every rank: the network's (its mixing matrices
        scaled by ``scale``), then the readout's (weights scaled by ``readout_scale``).

        ``seed`` is a non-negative integer; ``scale`` and ``readout_scale`` are finite and
        non-negative.
        """
        owner = "Model.initial_controls"
        seed = check_seed(owner, seed)
        remedy = "a standard deviation is finite and non-negative (0 starts at zero)"
        scale = real(owner, "scale", scale, low=0.0, remedy=remedy)
        readout_scale = real(owner, "readout_scale", readout_scale, low=0.0, remedy=remedy)
        rng = np.random.default_rng(seed)
        return np.concatenate([self.network.initial_controls(rng, scale),
                               self.readout.initial_controls(rng, readout_scale)])

    def check_prediction(self, theta, x) -> tuple[np.ndarray, np.ndarray]:
        """Return ``theta`` and ``x`` as float arrays, or raise
        :class:`~pdeopt.errors.InputError` on every rank if either is not real, ``theta`` is
        not of the layout's size, ``x`` is not an ``(n_owned, batch >= 1, in_channels)`` block
        on some rank, or either holds NaN or Inf. Collective."""
        theta = real_array("Model", "theta", theta, self.comm)
        x = real_array("Model", "x", x, self.comm)
        error = None
        if theta.shape != (self.layout.size,):
            error = InputError(f"Model: theta has shape {theta.shape}, the model's controls "
                               f"({self.layout.size},); pass the controls of this model "
                               f"(model.initial_controls(), a solver's result.theta).")
        raise_collectively(error, self.comm)
        self.network.check_input(x)
        check_finite("Model: theta", theta, self.comm, replicated=True,
                     remedy="predict with finite controls, e.g. a solver's result.theta")
        check_finite("Model: x", x, self.comm,
                     remedy="reject or impute non-finite input data before predicting")
        return theta, x

    def output(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        """:math:`u_N` for the input block ``x`` (no tape); the arguments are checked first
        (:meth:`check_prediction`, collective)."""
        theta, x = self.check_prediction(theta, x)
        return self.network.forward(theta[:self.network.layout.size], x, store=False)[0]

    def _readout_input(self, name: str, theta, x):
        """The readout's method ``name``, :math:`u_N` and the control views, checked: a flow
        that overflows for finite data and controls is an :class:`~pdeopt.errors.InputError`,
        not a NaN prediction. Collective."""
        method = getattr(self.readout, name, None)
        if method is None:
            raise InputError(f"Model.{name}: the readout {type(self.readout).__name__} has no "
                             f"{name}; use Model.output for the network output u_N.")
        uN = self.output(theta, x)
        check_finite("Model: the network output u_N", uN, self.comm,
                     remedy=f"the flow overflowed for finite x and theta; reduce the step "
                            f"(now {self.network.step:g}, depth {self.network.N}), the "
                            f"controls' scale or the data's magnitude")
        return method, uN, self.layout.views(np.asarray(theta, dtype=float))

    def predict(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The readout's predictions: classes of a classifier, values of a regression.
        Collective; the arguments and :math:`u_N` are checked."""
        predict, uN, w = self._readout_input("predict", theta, x)
        return predict(uN, w)

    def probabilities(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(B, K)`` of a classifier model. Collective; the arguments and
        :math:`u_N` are checked."""
        probabilities, uN, w = self._readout_input("probabilities", theta, x)
        return probabilities(uN, w)

    def accuracy(self, theta: np.ndarray, x: np.ndarray, labels: np.ndarray) -> float:
        """Fraction of ``labels`` predicted correctly (the labels checked by the readout)."""
        predicted = self.predict(theta, x)
        return float(np.mean(predicted == self.readout.check_target(labels, len(predicted))))
