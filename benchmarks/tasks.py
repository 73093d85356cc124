"""The benchmarks' training tasks, defined once: the digits demo's and the surrogate demo's.

- :class:`DigitsTask`: ``demos/digits``'s classifier on scikit-learn's digits (its network,
  regulariser, data split (:func:`digits`) and initial controls by seed), with any of its
  settings changed.
- :class:`RegressionTask`: ``demos/surrogate``'s probe regression of Firedrake-generated
  diffusion-reaction data.
- :func:`classifier`, :func:`regularizer` and :func:`random_batch`: the pieces, for the
  benchmarks that time the digits network at other sizes on random images.

The demos keep their own literate copies of these; ``benchmarks/optimizers.py``,
``digits_study.py``, ``parallel.py`` and ``derivative_cost.py`` build theirs here.
"""

from types import MappingProxyType

from mpi4py import MPI

import pdeopt

__all__ = ["DIGITS", "REGRESSION", "PROBES", "ACTIVATIONS", "BASES", "classifier",
           "regularizer", "random_batch", "digits", "DigitsTask", "RegressionTask"]

#: The digits demo's settings: the scheme, C channels, N layers up to time T, the activation
#: (and the opening layer's, ``none`` for a linear lift), the stencil coordinates, the
#: regulariser's weights and the scales of the initial layer and classifier weights.
DIGITS = MappingProxyType(dict(scheme="parabolic", C=8, N=4, T=1.0, alpha=1e-3, beta=1e-2,
                               activation="tanh", opening="none", basis="shifts", scale=2.5,
                               readout_scale=1.0))
#: The surrogate demo's settings (difference coordinates, the classifier-free defaults of
#: :meth:`pdeopt.Model.initial_controls`).
REGRESSION = MappingProxyType(dict(C=4, N=4, T=1.0, alpha=1e-5, beta=1e-4))
#: The surrogate demo's nine probe pixels ``(iy, ix)`` on its 12×12 grid.
PROBES = tuple((iy, ix) for iy in (2, 6, 9) for ix in (2, 6, 9))
ACTIVATIONS = pdeopt.ACTIVATIONS
BASES = MappingProxyType({"differences": tuple(pdeopt.GRID_BASIS),
                          "shifts": tuple(pdeopt.GRID_SHIFTS)})


def classifier(grid, *, scheme="parabolic", C=8, N=4, T=1.0, activation="tanh",
               opening="none", basis="shifts"):
    """The digits network on ``grid``: an opening layer, ``N`` steps of ``scheme`` with step
    ``T / N`` on ``C`` channels, and the 2×2-pooled linear classifier into ten classes."""
    for name, value, known in (("scheme", scheme, pdeopt.SCHEMES), ("basis", basis, BASES),
                               ("activation", activation, ACTIVATIONS),
                               ("opening", opening, {"none": None, **ACTIVATIONS})):
        if value not in known:
            raise pdeopt.OptionError(f"{name} must be one of {sorted(known)}, got {value!r}.")
    ops = pdeopt.assemble_operators(grid, basis=BASES[basis])
    step = pdeopt.SCHEMES[scheme](ops, ACTIVATIONS[activation](), step=T / N)
    lift = None if opening == "none" else ACTIVATIONS[opening]()
    return pdeopt.Model(pdeopt.Network(step, channels=C, depth=N, opening_activation=lift),
                        pdeopt.PooledClassifier(grid, channels=C, classes=10))


def regularizer(model, **weights):
    """The regulariser of ``model``'s controls (``alpha=``, ``beta=``; pdeopt's defaults
    otherwise)."""
    return pdeopt.Regularizer(model, **weights)


def random_batch(grid, size, rng, part=slice(None)):
    """``size`` random images on ``grid`` and random labels of ten classes, drawn from ``rng``
    (images first); returns the input block of the samples ``part`` and their labels."""
    images = rng.random((size,) + grid.shape)
    labels = rng.integers(0, 10, size)
    return grid.to_field(images[part])[:, :, None], labels[part]


def digits(comm=MPI.COMM_WORLD, limit=None):
    """The 8×8 grid on ``comm`` and the digits' seeded, stratified 60/20/20 split on it (of
    the first ``limit`` digits of a stratified subsample; all 1797 by default)."""
    grid = pdeopt.PixelGrid(8, comm=comm)
    return grid, pdeopt.load_digits(grid, seed=0, limit=limit)


def _settings(defaults, changes):
    unknown = sorted(set(changes) - set(defaults))
    if unknown:
        raise pdeopt.OptionError(f"unknown settings {unknown}; known: {sorted(defaults)}.")
    return {**defaults, **changes}


class _Task:
    """A model, its regulariser and its training set ``train`` with targets ``targets``."""

    def initial_controls(self, seed):
        """The seeded initial controls of this task (identical on every rank)."""
        scales = {k: self.settings[k] for k in ("scale", "readout_scale") if k in self.settings}
        return self.model.initial_controls(seed=seed, **scales)

    def reduced_functional(self, theta):
        """:math:`\\hat J` on the training set, taped at ``theta``."""
        return pdeopt.ReducedFunctional(self.model, self.train.x, self.targets, self.regularizer,
                                        theta=theta)

    def torch_loss(self):
        """The training loss on the torch twin (the same discrete network in torch):
        ``loss(theta)`` of a float64 tensor. Collective (it gathers the images)."""
        import torch
        from pdeopt.model.torch_twin import TorchTwin

        twin = TorchTwin(self.model, self.grid, self.regularizer)
        x, y = twin.images(self.train.x), torch.tensor(self.targets)

        def loss(theta):
            return twin.loss(theta, x, y)

        return loss


class DigitsTask(_Task):
    """The digits demo's task: its network (:data:`DIGITS`, with ``changes``) on the training
    part of the digits' seeded 60/20/20 split.

    Parameters
    ----------
    comm
        The mesh communicator.
    limit
        Keep the first ``limit`` digits of a stratified subsample (all 1797 by default).
    grid, data
        :func:`digits`' grid and split, to share between tasks (``comm`` and ``limit`` are
        then ignored).
    **changes
        Settings of :data:`DIGITS` to change.
    """

    def __init__(self, *, comm=MPI.COMM_WORLD, limit=None, grid=None, data=None, **changes):
        self.settings = _settings(DIGITS, changes)
        self.grid, self.data = digits(comm, limit) if data is None else (grid, data)
        self.train, self.validation, self.test = (self.data[k] for k in
                                                  ("train", "validation", "test"))
        self.targets = self.train.labels
        s = self.settings
        network = ("scheme", "C", "N", "T", "activation", "opening", "basis")
        self.model = classifier(self.grid, **{k: s[k] for k in network})
        self.regularizer = regularizer(self.model, alpha=s["alpha"], beta=s["beta"])

    def accuracy(self, theta, split="test"):
        """The fraction of the digits of ``split`` the network with controls ``theta`` gets."""
        d = self.data[split]
        return self.model.accuracy(theta, d.x, d.labels)

    def logistic_accuracy(self, C=1.0):
        """Test accuracy of scikit-learn's logistic regression (inverse weight ``C``) on the
        training digits' pixels: the baseline without a network."""
        from sklearn.linear_model import LogisticRegression
        train, test = self.train, self.test
        model = LogisticRegression(C=C, max_iter=5000).fit(train.images.reshape(len(train), -1),
                                                           train.labels)
        return float(model.score(test.images.reshape(len(test), -1), test.labels))


class RegressionTask(_Task):
    """The surrogate demo's task: a parabolic network (:data:`REGRESSION`) on a 12×12 grid
    read out at :data:`PROBES`, on ``samples`` seeded sources of the diffusion-reaction
    problem (diffusivity 0.05, reaction 1), all of them for training."""

    def __init__(self, samples, *, comm=MPI.COMM_WORLD):
        self.settings = dict(REGRESSION)
        C, N, T = (self.settings[k] for k in ("C", "N", "T"))
        self.grid = pdeopt.PixelGrid(12, comm=comm)
        self.train = pdeopt.diffusion_reaction_data(self.grid, samples, list(PROBES), seed=0,
                                                    diffusivity=0.05, reaction=1.0)
        self.targets = self.train.targets
        ops = pdeopt.assemble_operators(self.grid)
        scheme = pdeopt.ParabolicScheme(ops, pdeopt.Tanh(), step=T / N)
        self.model = pdeopt.Model(pdeopt.Network(scheme, channels=C, depth=N),
                                  pdeopt.ProbeRegression(self.grid, C, list(PROBES),
                                                         len(PROBES)))
        self.regularizer = regularizer(self.model, alpha=self.settings["alpha"],
                                       beta=self.settings["beta"])
