r"""Consistency of a network with its continuous-time limit: observed orders under refinement.

A network of :math:`N` layers with step :math:`h = T/N` whose layer controls are samples of a
continuous-time control :math:`\theta(t)` on :math:`[0, T]`,

.. math:: \theta_{k,s} = \theta_s(t_k + o_s h), \qquad t_k = kh,

(:math:`o_s` the scheme's :attr:`~pdeopt.model.schemes.Scheme.control_offsets`: 0 for the
one-step schemes and leapfrog, :math:`\tfrac12` and 1 for Verlet's two sets) is a time
discretisation of :math:`\dot u = F(u;\theta(t))` (leapfrog: :math:`\ddot u = F`,
:math:`\dot u(0) = 0`; Verlet: the Hamiltonian pair; IMEX: with the diffusion
:math:`-M^{-1}Lu` added). For smooth :math:`\theta` the output converges at the scheme's
:attr:`~pdeopt.model.schemes.Scheme.order` :math:`p`,
:math:`\|u_N - u(T)\|_M = O(h^p)`. The study measures :math:`p` two ways:

- against a reference network of :math:`N_{\mathrm{ref}}` layers,
  :math:`e_N = \|u_N - u_{N_{\mathrm{ref}}}\|_M / \|u_{N_{\mathrm{ref}}}\|_M` (the plot);
- by Richardson's successive differences :math:`d_N = \|u_N - u_{2N}\|_M /
  \|u_{N_{\mathrm{ref}}}\|_M = Ch^p(1 - 2^{-p}) + O(h^{p+1})`, whose slope in
  :math:`\log h` is :math:`p` with no bias from the reference's own error: the order
  reported is the least-squares slope over the finest ``fit`` differences (the coarsest
  networks, :math:`N = 4, 8`, are pre-asymptotic: the table shows every pairwise order).

Controls drawn independently per layer, as ordinary training initialises and updates them, are
samples of a path that is smooth at no resolution: :func:`independent_path` draws one value per
layer of the reference network and a network of :math:`N` layers sees every
:math:`(N_{\mathrm{ref}}/N)`-th. Then :math:`u_N` does not converge at the scheme's order:
the layers average independent forcings, so successive networks differ by a sampling error
(Sander, Ablin & Peyré 2022, "Do residual neural networks discretize neural ordinary
differential equations?"), and the study reports the order it observes and that it is not the
scheme's.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from pdeopt.checks import integer, real
from pdeopt.errors import InputError
from pdeopt.model.network import Network
from pdeopt.parallel import print0

__all__ = ["ControlPath", "smooth_path", "independent_path", "ConsistencyStudy",
           "consistency_study"]


class ControlPath:
    r"""A continuous-time control for a network's layers, :math:`t \mapsto \theta(t)` on
    :math:`[0, T]`, with a time-independent opening layer.

    Parameters
    ----------
    weight, bias
        Callables :math:`t \mapsto` the layer mixing matrices ``(P, S, C, C)`` and biases
        ``(P, C)`` at time ``t`` (``P`` the scheme's control sets).
    opening_weight, opening_bias
        The opening layer's controls ``(S, C, c_in)`` and ``(C,)``.
    final_time
        :math:`T > 0`.
    """

    def __init__(self, weight: Callable, bias: Callable, opening_weight: np.ndarray,
                 opening_bias: np.ndarray, final_time: float):
        self.weight, self.bias = weight, bias
        self.opening_weight = np.asarray(opening_weight, dtype=float)
        self.opening_bias = np.asarray(opening_bias, dtype=float)
        self.final_time = real("ControlPath", "final_time", final_time, low=0.0,
                               low_open=True, remedy="give the final time T > 0, e.g. 1.0")

    def controls(self, network: Network) -> np.ndarray:
        r"""The control vector of ``network`` sampled from the path:
        :math:`\theta_{k,s} = \theta_s(t_k + o_sh)`.

        Raises
        ------
        InputError
            If the network's :math:`Nh` is not the path's final time, or the path's arrays
            do not have the network's block shapes.
        """
        _check_network(network)
        T = network.N * network.step
        if abs(T - self.final_time) > 1e-12 * self.final_time:
            raise InputError(f"ControlPath.controls: the network's final time N*h = "
                             f"{network.N}*{network.step:g} = {T:g} is not the path's "
                             f"T = {self.final_time:g}; build the network with "
                             f"step=T/depth.")
        theta = np.zeros(network.layout.size)
        v = network.layout.views(theta)
        scheme, h = network.scheme, network.step
        sets = scheme.control_sets
        W, b = v["layers.weight"], v["layers.bias"]
        _assign(v["opening.weight"], self.opening_weight, "opening_weight")
        _assign(v["opening.bias"], self.opening_bias, "opening_bias")
        W, b = W.reshape((network.N, sets) + W.shape[-3:]), b.reshape((network.N, sets, -1))
        for k in range(network.N):
            for s, offset in enumerate(scheme.control_offsets):
                t = (k + offset) * h
                Wt, bt = np.asarray(self.weight(t)), np.asarray(self.bias(t))
                _check_shape(Wt, W[k].shape, "weight(t)")
                _check_shape(bt, b[k].shape, "bias(t)")
                W[k, s], b[k, s] = Wt[s], bt[s]
        return theta


def _check_shape(value, shape, name):
    if value.shape != shape:
        raise InputError(f"ControlPath: {name} has shape {value.shape}, the network's "
                         f"layer block has shape {shape} (control sets first); build the path "
                         f"for this network.")


def _assign(out, value, name):
    if np.shape(value) != out.shape:
        raise InputError(f"ControlPath: {name} has shape {np.shape(value)}, the network's "
                         f"block has shape {out.shape}; build the path for this network.")
    out[...] = value


def _check_network(network):
    if not isinstance(network, Network):
        raise InputError(f"consistency: network={type(network).__name__} must be a "
                         f"pdeopt.Network; pass model.network for a Model.")


def _shapes(network):
    S, C = network.ops.S, network.C
    P = network.scheme.control_sets
    return (P, S, C, C), (P, C), (S, C, network.c_in)


def smooth_path(network: Network, rng: np.random.Generator, *, final_time: float = 1.0,
                modes: int = 3, scale: float = 1.0, bias: float = 0.3) -> ControlPath:
    r"""A random smooth path shaped for ``network``'s layers:

    .. math:: W(t) = W_0 + \sum_{j=1}^{m} \frac{A_j\cos(2\pi jt/T) + B_j\sin(2\pi jt/T)}{j^2},

    :math:`W_0, A_j, B_j` normal with variance ``scale**2 / (S C)``; the biases likewise with
    standard deviation ``bias``. Seeded by ``rng`` (give every rank the same seed).
    """
    _check_network(network)
    modes = integer("smooth_path", "modes", modes, low=0, remedy="give the Fourier modes, e.g. 3")
    wshape, bshape, oshape = _shapes(network)
    s = real("smooth_path", "scale", scale, low=0.0, remedy="e.g. 1.0") / math.sqrt(
        network.ops.S * network.C)
    sb = real("smooth_path", "bias", bias, low=0.0, remedy="e.g. 0.3")
    cw = s * rng.standard_normal((2 * modes + 1,) + wshape)
    cb = sb * rng.standard_normal((2 * modes + 1,) + bshape)
    T = real("smooth_path", "final_time", final_time, low=0.0, low_open=True, remedy="e.g. 1.0")

    def series(c, t):
        out = c[0].copy()
        for j in range(1, modes + 1):
            a = 2 * math.pi * j * t / T
            out += (c[2 * j - 1] * math.cos(a) + c[2 * j] * math.sin(a)) / j**2
        return out

    opening = rng.standard_normal(oshape) / math.sqrt(network.ops.S * network.c_in)
    return ControlPath(lambda t: series(cw, t), lambda t: series(cb, t), opening,
                       np.zeros(oshape[1]), T)


def independent_path(network: Network, rng: np.random.Generator, resolution: int, *,
                     final_time: float = 1.0, scale: float = 1.0,
                     bias: float = 0.3) -> ControlPath:
    r"""Controls drawn independently per layer, as a path: piecewise constant on
    ``resolution`` equal intervals of :math:`[0, T]`, one independent normal draw per interval
    (variances as :func:`smooth_path`'s :math:`W_0`). A network of ``resolution`` layers has
    i.i.d. layer controls; a coarser one samples every ``resolution/N``-th of them.
    """
    _check_network(network)
    R = integer("independent_path", "resolution", resolution, low=1,
                remedy="give the reference depth, e.g. 1024")
    wshape, bshape, oshape = _shapes(network)
    s = real("independent_path", "scale", scale, low=0.0, remedy="e.g. 1.0") / math.sqrt(
        network.ops.S * network.C)
    sb = real("independent_path", "bias", bias, low=0.0, remedy="e.g. 0.3")
    T = real("independent_path", "final_time", final_time, low=0.0, low_open=True,
             remedy="e.g. 1.0")
    W = s * rng.standard_normal((R,) + wshape)
    b = sb * rng.standard_normal((R,) + bshape)

    def cell(t):
        return min(int(math.floor(t / T * R + 1e-9)), R - 1)

    opening = rng.standard_normal(oshape) / math.sqrt(network.ops.S * network.c_in)
    return ControlPath(lambda t: W[cell(t)], lambda t: b[cell(t)], opening,
                       np.zeros(oshape[1]), T)


@dataclass(frozen=True)
class ConsistencyStudy:
    r"""The outputs of a network under refinement of its layers at fixed :math:`T`.

    Attributes
    ----------
    scheme
        The scheme's name.
    expected
        The scheme's :attr:`~pdeopt.model.schemes.Scheme.order`.
    final_time
        :math:`T`.
    depths
        The refined depths :math:`N` (each the double of the last).
    reference
        :math:`N_{\mathrm{ref}}`.
    errors
        :math:`e_N`, relative to the reference output (``inf`` if the output was not finite).
    differences
        :math:`d_N = \|u_N - u_{2N}\|_M / \|u_{N_{\mathrm{ref}}}\|_M` for all but the last
        depth.
    order
        The observed order: the least-squares slope of :math:`\log d_N` against
        :math:`\log h` over the finest ``fit`` differences (``nan`` with fewer than two
        finite ones).
    fit
        How many of the finest differences :attr:`order` is fitted to.
    tolerance
        :attr:`consistent` means :math:`|p - p_{\mathrm{expected}}| \le` ``tolerance``.
    """

    scheme: str
    expected: int
    final_time: float
    depths: tuple
    reference: int
    errors: tuple
    differences: tuple
    order: float
    fit: int
    tolerance: float

    @property
    def pairwise(self) -> tuple:
        r""":math:`\log_2(d_N/d_{2N})` for successive pairs."""
        d = np.array(self.differences)
        with np.errstate(divide="ignore", invalid="ignore"):
            return tuple(float(r) for r in np.log2(d[:-1] / d[1:]))

    @property
    def reference_order(self) -> float:
        """The least-squares slope of :math:`\\log e_N` against :math:`\\log h` (biased up
        when :math:`N` nears :math:`N_{\\mathrm{ref}}`; :attr:`order` is not)."""
        return _slope(self.depths, self.errors)

    @property
    def consistent(self) -> bool:
        """Whether the observed order is the scheme's, within :attr:`tolerance`."""
        return bool(np.isfinite(self.order) and abs(self.order - self.expected)
                    <= self.tolerance)

    def verdict(self) -> str:
        """One sentence: the observed order against the scheme's."""
        if self.consistent:
            return (f"observed order {self.order:.2f}, the {self.scheme} scheme's order is "
                    f"{self.expected}: the network converges to its continuous-time limit")
        return (f"observed order {self.order:.2f}, the {self.scheme} scheme's order is "
                f"{self.expected}: no limit at the scheme's order - these layer controls are "
                f"not samples of a smooth theta(t)")

    def table(self) -> str:
        """Errors, differences and pairwise orders, one row per depth, and the verdict."""
        head = (f"consistency of the {self.scheme} network, T = {self.final_time:g}, "
                f"reference N = {self.reference}")
        rows = [f"{'N':>6} {'h':>10} {'e_N':>11} {'d_N':>11} {'order':>7}"]
        pw = self.pairwise
        for i, N in enumerate(self.depths):
            d = f"{self.differences[i]:11.4e}" if i < len(self.differences) else " " * 11
            p = f"{pw[i - 1]:7.3f}" if 0 < i < len(self.differences) else " " * 7
            rows.append(f"{N:>6} {self.final_time / N:>10.4e} {self.errors[i]:11.4e} {d} {p}")
        return "\n".join([head] + rows + [self.verdict()])

    def print(self, comm: MPI.Comm = MPI.COMM_WORLD) -> None:
        """Print :meth:`table` on rank 0 of ``comm``."""
        print0(self.table(), comm=comm)

    def as_dict(self) -> dict:
        """The study in JSON types (non-finite numbers as ``None``)."""
        def f(x):
            return float(x) if np.isfinite(x) else None
        return {"scheme": self.scheme, "expected": self.expected,
                "final_time": self.final_time, "depths": list(self.depths),
                "reference": self.reference, "errors": [f(e) for e in self.errors],
                "differences": [f(d) for d in self.differences],
                "pairwise": [f(p) for p in self.pairwise], "order": f(self.order),
                "reference_order": f(self.reference_order), "fit": self.fit,
                "consistent": self.consistent, "tolerance": self.tolerance}


def _slope(depths, values):
    depths, values = np.asarray(depths[:len(values)], dtype=float), np.asarray(values)
    ok = np.isfinite(values) & (values > 0)
    if np.count_nonzero(ok) < 2:
        return math.nan
    return float(-np.polyfit(np.log(depths[ok]), np.log(values[ok]), 1)[0])


def consistency_study(network_for: Callable[[int], Network], path: ControlPath,
                      x: np.ndarray, *, depths=(4, 8, 16, 32, 64, 128, 256),
                      reference: int = 1024, fit: int = 3,
                      tolerance: float = 0.15) -> ConsistencyStudy:
    r"""Refine a network's layers at fixed :math:`T` with controls sampled from ``path`` and
    measure the order of convergence of its output. Collective.

    Parameters
    ----------
    network_for
        ``N -> Network`` of ``N`` layers with step ``path.final_time / N`` (the same scheme,
        operators and channels for every ``N``).
    path
        The continuous-time control (:func:`smooth_path`, :func:`independent_path`, or a
        :class:`ControlPath`).
    x
        An input block ``(n_owned, batch, in_channels)``.
    depths
        At least two depths, each twice the last.
    reference
        :math:`N_{\mathrm{ref}}`, larger than every depth.
    fit
        The order is fitted to the finest ``fit`` successive differences (at least 2; all of
        them if there are fewer).
    tolerance
        The band of :attr:`ConsistencyStudy.consistent` around the scheme's order.

    Raises
    ------
    InputError
        For depths that do not double, a reference not above them, a factory whose network
        has the wrong depth or final time, or an input the network rejects.
    """
    try:
        depths = tuple(int(N) for N in depths)
    except (TypeError, ValueError):
        raise InputError(f"consistency_study: depths={depths!r} must be integers, e.g. "
                         f"(4, 8, 16, 32)") from None
    if len(depths) < 2 or depths[0] < 1 or any(b != 2 * a for a, b in zip(depths, depths[1:])):
        raise InputError(f"consistency_study: depths={depths} must be at least two positive "
                         f"integers, each twice the last, e.g. (4, 8, 16, 32).")
    reference = integer("consistency_study", "reference", reference, low=depths[-1] + 1,
                        remedy=f"the reference depth must exceed the largest depth "
                               f"{depths[-1]}, e.g. {4 * depths[-1]}")
    tolerance = real("consistency_study", "tolerance", tolerance, low=0.0, low_open=True,
                     remedy="e.g. 0.15")
    fit = min(integer("consistency_study", "fit", fit, low=2,
                      remedy="fit the order to at least the 2 finest differences, e.g. 3"),
              len(depths) - 1)
    outputs = {}
    scheme = None
    for N in depths + (reference,):
        network = network_for(N)
        _check_network(network)
        if network.N != N:
            raise InputError(f"consistency_study: network_for({N}) has {network.N} layers; "
                             f"it must build a network of N layers.")
        name = network.scheme.name
        if scheme is not None and name != scheme:
            raise InputError(f"consistency_study: network_for({N}) uses the {name} scheme, "
                             f"the others {scheme}; refine one scheme.")
        scheme = name
        network.check_input(x)
        with np.errstate(over="ignore", invalid="ignore"):
            u, _ = network.forward(path.controls(network), x, store=False)
        outputs[N] = (u, network)
    u_ref, net_ref = outputs[reference]
    m = net_ref.ops.mass[:, None, None]
    comm = net_ref.comm

    def norm(a):
        local = float(np.sum(m * a * a)) if np.all(np.isfinite(a)) else math.inf
        return math.sqrt(comm.allreduce(local, op=MPI.SUM))

    scale = norm(u_ref)
    if not math.isfinite(scale) or scale == 0.0:
        raise InputError(f"consistency_study: the reference output (N = {reference}) is "
                         f"{'not finite' if scale else 'zero'}; choose controls and an input "
                         f"with a finite, non-zero output.")
    errors = tuple(norm(outputs[N][0] - u_ref) / scale for N in depths)
    differences = tuple(norm(outputs[a][0] - outputs[b][0]) / scale
                        for a, b in zip(depths, depths[1:]))
    order = _slope(depths[-1 - fit:-1], differences[-fit:])
    return ConsistencyStudy(scheme, net_ref.scheme.order, path.final_time, depths, reference,
                            errors, differences, order, fit, tolerance)
