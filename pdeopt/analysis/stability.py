r"""Linear stability of a network's layers: the largest step :math:`h` each layer allows.

Layer :math:`k` of a network maps the state by :math:`\Phi_h(\,\cdot\,;\theta_k)`; linearised at
the forward trajectory of an input block :math:`x`, it is the Jacobian :math:`J_k`, applied
matrix-free by the scheme's tangent-linear kernel with :math:`\dot\theta = 0`. Writing
:math:`F_u` for the derivative of the layer's forcing at :math:`u_k`,

- parabolic, :math:`u_{k+1} = u_k - hK_k^*\sigma(K_ku_k + b_k)`:
  :math:`J_k = I - hA_k`, :math:`A_k = -F_u = K_k^*\operatorname{diag}(\sigma'(z_k))K_k`,
  self-adjoint and positive semi-definite in the lumped-mass inner product
  :math:`\langle a, b\rangle_M = \sum_i m_i\, a_i \cdot b_i` (for monotone :math:`\sigma`).
  Its eigenvalues :math:`1 - h\lambda`, :math:`\lambda \in [0, \lambda_{\max}]`, satisfy
  :math:`|1 - h\lambda| \le 1` iff :math:`h \le 2/\lambda_{\max}`;
- forward Euler (ResNet), :math:`u_{k+1} = u_k + h\sigma(K_ku_k + b_k)`:
  :math:`J_k = I + hB_k`, :math:`B_k = F_u = \operatorname{diag}(\sigma'(z_k))K_k`, not
  symmetric. :math:`|1 + h\mu|^2 = 1 + 2h\operatorname{Re}\mu + h^2|\mu|^2 \le 1` iff
  :math:`h \le -2\operatorname{Re}\mu/|\mu|^2`, so the bound is the least of these over the
  eigenvalues :math:`\mu` of :math:`B_k`, and 0 (no :math:`h > 0` is stable) if any has
  :math:`\operatorname{Re}\mu \ge 0`, :math:`\mu \ne 0`;
- leapfrog, :math:`u_{k+1} = 2u_k - u_{k-1} - h^2K_k^*\sigma(K_ku_k + b_k)`: on an eigenvector
  of :math:`A_k` the linearised recurrence :math:`u_{k+1} = 2u_k - u_{k-1} - h^2\lambda u_k`
  has the characteristic roots :math:`\xi^2 - (2 - h^2\lambda)\xi + 1 = 0`, whose product is 1,
  so both lie on the unit circle iff :math:`|2 - h^2\lambda| \le 2`, i.e. for
  :math:`\lambda \ge 0` iff :math:`h^2\lambda_{\max} \le 4`: :math:`h \le 2/\sqrt{\lambda_{\max}}`.
  The start layer acts on :math:`(u_0, u_0)` by :math:`u_1 = (I - \tfrac12h^2A_0)u_0`, and
  :math:`|1 - \tfrac12h^2\lambda| \le 1` iff :math:`h^2\lambda \le 4`: the same bound, exactly;
- Verlet, :math:`y_{k+1} = y_k + hK_{k,1}^*\sigma(\cdot)`,
  :math:`z_{k+1} = z_k - c_kK_{k,2}^*\sigma(\cdot)` (:math:`c_0 = \tfrac32h`, :math:`c_k = h`):
  with :math:`A_{k,1}` at :math:`z_k` and :math:`A_{k,2}` at :math:`y_{k+1}` (both PSD),
  :math:`J_k = \begin{pmatrix} I & hA_{k,1} \\ -c_kA_{k,2} & I - c_khA_{k,2}A_{k,1}
  \end{pmatrix}`. An eigenpair :math:`J_k(a, b) = \xi(a, b)` gives
  :math:`a = hA_{k,1}b/(\xi - 1)` and then :math:`c_kh\,A_{k,2}A_{k,1}b = (2 - \xi - 1/\xi)\,b`:
  with :math:`\nu \ge 0` an eigenvalue of :math:`A_{k,2}A_{k,1}` (similar to a PSD matrix),
  :math:`\xi^2 - (2 - c_kh\nu)\xi + 1 = 0`, roots of product 1, on the unit circle iff
  :math:`c_kh\,\nu_{\max} \le 4`: :math:`h \le 2/\sqrt{(c_k/h)\,\nu_{\max}}`, the leapfrog
  bound with :math:`\lambda_{\max}` replaced by the spectral radius of :math:`A_{k,2}A_{k,1}`
  (and by :math:`\tfrac32` of it at the start);
- IMEX, :math:`u_{k+1} = S_h(u_k + h\sigma(K_ku_k + b_k))`, :math:`S_h = (M + hL)^{-1}M`:
  :math:`J_k(h) = S_h(I + hB_k)`. :math:`S_h` is M-self-adjoint with its spectrum in
  :math:`(0, 1]` but does not commute with :math:`B_k`, so there is no closed form: the bound
  is the first step :math:`s` at which the spectral radius :math:`\rho(J_k(s))` (Arnoldi,
  with :math:`S_s` factorised anew for each :math:`s`) exceeds 1, located by bisection to the
  relative tolerance ``rtol`` (0 if already :math:`\rho(J_k(10^{-6}h)) > 1`: the linearised
  ODE :math:`\dot v = (B_k - M^{-1}L)v` grows; ``inf`` if no step up to :math:`2^{10}h`
  exceeds 1).

The extreme eigenvalues are computed by Lanczos (symmetric :math:`A_k`) or Arnoldi
(:math:`B_k`, :math:`A_{k,2}A_{k,1}`, :math:`J_k` for IMEX) in the :math:`M`-inner product
with full reorthogonalisation, on the whole batch × channels block (the samples are
independent, so the block's spectrum is the union of the samples'). An iteration that stops
before its estimate meets the tolerance returns its record with ``converged=False``; a step
that violates its bound is reported, never corrected.
"""

import math
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from pdeopt.checks import integer, real
from pdeopt.errors import InputError, OptionError
from pdeopt.model.control import LayerControl
from pdeopt.model.network import Network
from pdeopt.parallel import print0

__all__ = ["LayerStability", "StabilityReport", "LayerJacobians", "layer_jacobians",
           "stability_report", "step_bound", "stability_column"]

#: The schemes with a derived bound: name -> the kind of eigenvalue problem.
_KINDS = {"parabolic": "symmetric", "leapfrog": "symmetric", "forward_euler": "general",
          "verlet": "product", "imex": "implicit"}


@dataclass(frozen=True)
class LayerStability:
    r"""The linear stability of one layer.

    Attributes
    ----------
    layer
        The layer index :math:`k`.
    eigenvalues
        The eigenvalue estimates the bound rests on: :math:`(\lambda_{\min}, \lambda_{\max})` of
        :math:`A_k` (parabolic, leapfrog), the Ritz values of :math:`B_k` that set the growth
        factor and the bound (forward Euler; complex), or the real parts
        :math:`(\nu_{\min}, \nu_{\max})` of the extreme Ritz values of
        :math:`A_{k,2}A_{k,1}` (Verlet), or the dominant eigenvalue of :math:`J_k` (IMEX;
        complex).
    bound
        The largest stable step :math:`h` at this layer (``inf`` if every step is stable, 0 if
        none is).
    step
        The network's step :math:`h`.
    growth
        The estimated spectral radius of the linearised layer map :math:`J_k` (for leapfrog, of
        the two-step recurrence on the extreme eigenvalues; for its start layer, of
        :math:`I - \tfrac12h^2A_0`).
    iterations
        Lanczos or Arnoldi iterations used.
    converged
        Whether the estimates met the relative tolerance (or the Krylov space became invariant).
    """

    layer: int
    eigenvalues: tuple
    bound: float
    step: float
    growth: float
    iterations: int
    converged: bool

    @property
    def margin(self) -> float:
        """:math:`\\text{bound}/h - 1`: negative when the layer's step is unstable."""
        return self.bound / self.step - 1.0

    @property
    def stable(self) -> bool:
        """Whether :math:`h \\le` the bound."""
        return self.step <= self.bound

    def as_dict(self) -> dict:
        """Plain JSON types: complex eigenvalues as ``[re, im]``, an infinite bound as ``None``."""
        eig = [[float(e.real), float(e.imag)] if isinstance(e, complex) else float(e)
               for e in self.eigenvalues]
        return {"layer": self.layer, "eigenvalues": eig, "bound": _finite(self.bound),
                "step": self.step, "margin": _finite(self.margin), "growth": self.growth,
                "iterations": self.iterations, "converged": self.converged,
                "stable": self.stable}


def _finite(value):
    return None if math.isinf(value) else float(value)


@dataclass(frozen=True)
class StabilityReport:
    """Per-layer linear stability of a network at one input block and one control.

    Attributes
    ----------
    scheme
        The scheme's :attr:`~pdeopt.model.schemes.Scheme.name`.
    step
        The network's step :math:`h`.
    layers
        One :class:`LayerStability` per layer.
    """

    scheme: str
    step: float
    layers: tuple

    @property
    def stable(self) -> bool:
        """Whether every layer's step is within its bound."""
        return all(r.stable for r in self.layers)

    @property
    def converged(self) -> bool:
        """Whether every layer's eigenvalue iteration converged."""
        return all(r.converged for r in self.layers)

    @property
    def bound(self) -> float:
        """The smallest per-layer bound: the largest step stable at every layer."""
        return min(r.bound for r in self.layers)

    @property
    def margin(self) -> float:
        """The smallest per-layer margin."""
        return min(r.margin for r in self.layers)

    def table(self) -> str:
        """The report as a text table, one row per layer."""
        head = (f"stability of the {self.scheme} network, h = {self.step:.6g}: "
                f"{'stable' if self.stable else 'UNSTABLE'}"
                f"{'' if self.converged else ' (some iterations did not converge)'}")
        rows = [f"{'layer':>5} {'lambda':>26} {'bound':>11} {'margin':>10} {'growth':>10} "
                f"{'its':>4} {'conv':>5} {'stable':>6}"]
        for r in self.layers:
            lam = max(r.eigenvalues, key=abs)
            lam = f"{lam.real:.4e}{lam.imag:+.3e}j" if isinstance(lam, complex) else f"{lam:.6e}"
            rows.append(f"{r.layer:>5} {lam:>26} {r.bound:>11.4e} {r.margin:>10.3e} "
                        f"{r.growth:>10.6f} {r.iterations:>4} {str(r.converged):>5} "
                        f"{str(r.stable):>6}")
        return "\n".join([head] + rows)

    def print(self, comm: MPI.Comm = MPI.COMM_WORLD) -> None:
        """Print :meth:`table` on rank 0 of ``comm``."""
        print0(self.table(), comm=comm)

    def as_dict(self) -> dict:
        """The report in JSON types, for :func:`~pdeopt.parallel.write_json`."""
        return {"scheme": self.scheme, "step": self.step, "stable": self.stable,
                "converged": self.converged, "bound": _finite(self.bound),
                "margin": _finite(self.margin), "layers": [r.as_dict() for r in self.layers]}


class LayerJacobians:
    r"""The layers of a network linearised at the forward trajectory of an input block.

    Built by :func:`layer_jacobians`. The state blocks are ``(n_owned, batch, channels)`` on
    this rank's points.
    """

    def __init__(self, network: Network, theta: np.ndarray, x: np.ndarray):
        self.network = network
        self.scheme = network.scheme
        self.views = network.layout.views(theta)
        _, self.trajectory = network.forward(theta, x)
        self.m = network.ops.mass[:, None, None]
        self.comm = network.comm

    def control(self, k: int) -> LayerControl:
        """Layer ``k``'s control."""
        return LayerControl(self.views["layers.weight"][k], self.views["layers.bias"][k])

    def action(self, k: int, state_dot: tuple) -> tuple:
        r""":math:`J_k\dot s`: the tangent-linear step of layer ``k`` with
        :math:`\dot\theta_k = 0`, on a state tuple (the scheme's: one block, or two)."""
        th = self.control(k)
        zero = LayerControl(np.zeros_like(th.weight), np.zeros_like(th.bias))
        out, _ = self.scheme.step_tlm(k, self.trajectory.states[k], self.trajectory.records[k],
                                      th, state_dot, zero)
        return out

    def forcing_action(self, k: int, v: np.ndarray, half: int | None = None) -> np.ndarray:
        r""":math:`F_u v`, the derivative of layer ``k``'s forcing at its state :math:`u_k`;
        for a Verlet layer, of half-step ``half``: 0 at :math:`z_k` with
        :math:`\theta_{k,1}`, 1 at :math:`y_{k+1}` with :math:`\theta_{k,2}`."""
        th = self.control(k)
        state, record = self.trajectory.states[k], self.trajectory.records[k]
        if half is not None:
            th = LayerControl(th.weight[half], th.bias[half])
            u, record = (state[1], record[0]) if half == 0 else (record[2], record[1])
        else:
            u = state[-1]
        zero = LayerControl(np.zeros_like(th.weight), np.zeros_like(th.bias))
        F_dot, _ = self.scheme.forcing.tlm(u, record, th, v, zero)
        return F_dot

    def inner(self, a: np.ndarray, b: np.ndarray) -> float:
        r""":math:`\langle a, b\rangle_M` over every point, sample and channel. Collective."""
        return self.comm.allreduce(float(np.sum(self.m * a * b)), op=MPI.SUM)


def layer_jacobians(network: Network, theta: np.ndarray, x: np.ndarray) -> LayerJacobians:
    """Check the arguments and linearise ``network`` at ``(theta, x)``. Collective.

    Parameters
    ----------
    network
        A :class:`~pdeopt.model.network.Network`.
    theta
        The network's controls, shape ``(network.layout.size,)`` (for a
        :class:`~pdeopt.model.model.Model`'s controls pass ``theta[:network.layout.size]``).
    x
        An input block ``(n_owned, batch, in_channels)``, finite.
    """
    _check_network(network)
    size = network.layout.size
    try:
        theta = np.asarray(theta, dtype=float)
    except (TypeError, ValueError):
        raise InputError("stability_report: theta is not an array of real numbers; pass the "
                         "network's controls as a NumPy float array.") from None
    if theta.shape != (size,):
        raise InputError(f"stability_report: theta has shape {theta.shape}, the network's "
                         f"controls have shape ({size},); for a Model's controls pass "
                         f"theta[:model.network.layout.size].")
    if not np.all(np.isfinite(theta)):
        raise InputError("stability_report: theta contains NaN or Inf values; the layers can "
                         "only be linearised at finite controls.")
    network.check_input(x)
    x = np.asarray(x, dtype=float)
    bad = network.comm.allreduce(int(np.count_nonzero(~np.isfinite(x))), op=MPI.SUM)
    if bad:
        raise InputError(f"stability_report: x contains {bad} NaN or Inf values; give a finite "
                         f"input block.")
    return LayerJacobians(network, theta, x)


def _check_network(network):
    if not isinstance(network, Network):
        raise InputError(f"stability_report: network={type(network).__name__} must be a "
                         f"pdeopt.Network; pass model.network for a Model.")


def _check_options(network, max_it, rtol):
    _check_network(network)
    max_it = integer("stability_report", "max_it", max_it, low=1,
                     remedy="give the Lanczos/Arnoldi iteration cap, e.g. 100")
    rtol = real("stability_report", "rtol", rtol, low=0.0, high=1.0, low_open=True,
                remedy="give a relative tolerance on the eigenvalue estimates, e.g. 1e-10")
    name = getattr(network.scheme, "name", None)
    if name not in _KINDS:
        raise OptionError(f"stability_report: no stability bound is derived for the scheme "
                          f"{name!r} yet; the report supports {sorted(_KINDS)}.")
    return max_it, rtol, name


def _start(lin: LayerJacobians, shape) -> np.ndarray:
    """A random start vector (seeded per rank: reproducible), M-normalised."""
    rng = np.random.default_rng(12345 + lin.comm.rank)
    q = rng.standard_normal(shape)
    return q / math.sqrt(lin.inner(q, q))


def _orthogonalise(lin, Q, w):
    """Two passes of classical Gram-Schmidt of ``w`` against the M-orthonormal ``Q``."""
    flat = [q.ravel() for q in Q]
    mw = (lin.m * w).ravel()
    for _ in range(2):
        c = np.array([q @ mw for q in flat])
        c = lin.comm.allreduce(c, op=MPI.SUM)
        for ci, q in zip(c, Q):
            w -= ci * q
        mw = (lin.m * w).ravel()
    return w


def _lanczos(lin, apply, shape, max_it, rtol):
    r"""Lanczos for the extreme eigenvalues of an M-self-adjoint ``apply``.

    Converged when the residual :math:`\beta_j |s_{j,\max}|` of the top Ritz pair is at most
    ``rtol`` :math:`\cdot|\theta_{\max}|`, or when the Krylov space is invariant.
    Returns ``(lam_min, lam_max, iterations, converged)``.
    """
    Q = [_start(lin, shape)]
    alphas, betas = [], []
    theta_ = np.zeros(1)
    for j in range(1, max_it + 1):
        w = apply(Q[-1])
        alphas.append(lin.inner(w, Q[-1]))
        w = _orthogonalise(lin, Q, w)
        beta = math.sqrt(max(lin.inner(w, w), 0.0))
        T = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        theta_, S = np.linalg.eigh(T)
        scale = max(abs(theta_[0]), abs(theta_[-1]), np.finfo(float).tiny)
        if beta <= 1e-13 * scale or beta * abs(S[-1, -1]) <= rtol * scale or \
                j == int(np.prod(shape)) and lin.comm.size == 1:
            return float(theta_[0]), float(theta_[-1]), j, True
        if j < max_it:
            betas.append(beta)
            Q.append(w / beta)
    return float(theta_[0]), float(theta_[-1]), max_it, False


def _euler_bounds(mu, h):
    r"""Per Ritz value :math:`\mu`: the bound :math:`-2\operatorname{Re}\mu/|\mu|^2` (0 if
    :math:`\operatorname{Re}\mu \ge 0`) and :math:`|1 + h\mu|`.

    A Ritz value below ``1e-12`` of the largest modulus is a zero eigenvalue at round-off (a
    saturated activation, :math:`\sigma' \approx 0`): it constrains no step (``inf``), where
    the sign of its round-off real part would otherwise decide between 0 and a huge bound.
    """
    a2 = np.abs(mu) ** 2
    zero = a2 <= (1e-12 * np.max(np.abs(mu))) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        bounds = np.where(zero, np.inf, np.where(mu.real >= 0, 0.0, -2 * mu.real / a2))
    return bounds, np.abs(1 + h * mu)


def _arnoldi(lin, apply, shape, pick, max_it, rtol):
    r"""Arnoldi (M-orthonormal basis) for the Ritz values of ``apply`` that ``pick`` selects.

    ``pick(mu)`` gives the indices of the Ritz values the caller needs. Converged when those
    pairs have residual :math:`h_{j+1,j}|y_j| \le` ``rtol`` :math:`\cdot\max|\mu|`, or when
    the Krylov space is invariant. Returns ``(ritz, iterations, converged)``, ``ritz`` the
    picked values in order, repeats removed.
    """
    Q = [_start(lin, shape)]
    H = np.zeros((max_it + 1, max_it))
    for j in range(max_it):
        w = apply(Q[-1])
        flat, mw = [q.ravel() for q in Q], (lin.m * w).ravel()
        for _ in range(2):  # classical Gram-Schmidt, twice
            c = lin.comm.allreduce(np.array([q @ mw for q in flat]), op=MPI.SUM)
            H[:j + 1, j] += c
            for ci, q in zip(c, Q):
                w -= ci * q
            mw = (lin.m * w).ravel()
        beta = math.sqrt(max(lin.inner(w, w), 0.0))
        H[j + 1, j] = beta
        mu, Y = np.linalg.eig(H[:j + 1, :j + 1])
        Y /= np.linalg.norm(Y, axis=0)
        picked = list(dict.fromkeys(int(i) for i in pick(mu)))
        scale = max(float(np.max(np.abs(mu))), np.finfo(float).tiny)
        invariant = beta <= 1e-13 * scale or (j + 1 == int(np.prod(shape))
                                              and lin.comm.size == 1)
        done = invariant or float(np.max(beta * np.abs(Y[-1, picked]))) <= rtol * scale
        if done or j + 1 == max_it:
            return tuple(complex(mu[i]) for i in picked), j + 1, bool(done)
        Q.append(w / beta)


def _leapfrog_growth(lam, h):
    r"""The larger root modulus of :math:`\xi^2 - (2 - h^2\lambda)\xi + 1`."""
    t = 2.0 - h * h * lam
    disc = t * t - 4.0
    return 1.0 if disc <= 0 else (abs(t) + math.sqrt(disc)) / 2.0


def _layer(lin, k, kind, name, h, max_it, rtol):
    shape = lin.trajectory.states[k][-1].shape
    if kind == "symmetric":
        lo, hi, its, conv = _lanczos(lin, lambda v: -lin.forcing_action(k, v), shape,
                                     max_it, rtol)
        if name == "parabolic":
            bound = 2.0 / hi if hi > 0 else math.inf
            growth = max(abs(1.0 - h * lo), abs(1.0 - h * hi))
        elif k == 0:  # the leapfrog start: (I - h^2 A_0 / 2) on (u_0, u_0)
            bound = 2.0 / math.sqrt(hi) if hi > 0 else math.inf
            growth = max(abs(1.0 - 0.5 * h * h * lo), abs(1.0 - 0.5 * h * h * hi))
        else:
            bound = 2.0 / math.sqrt(hi) if hi > 0 else math.inf
            growth = max(_leapfrog_growth(lo, h), _leapfrog_growth(hi, h))
        if lo < -1e-12 * max(abs(hi), 1.0):  # a non-monotone activation: A_k is indefinite
            bound = 0.0
        return LayerStability(k, (lo, hi), bound, h, growth, its, conv)
    if kind == "product":
        return _verlet_layer(lin, k, shape, h, max_it, rtol)
    if kind == "implicit":
        return _imex_layer(lin, k, shape, h, max_it, rtol)

    def pick(mu):
        bounds, growths = _euler_bounds(mu, h)
        return int(np.argmax(growths)), int(np.argmin(bounds))

    ritz, its, conv = _arnoldi(lin, lambda v: lin.forcing_action(k, v), shape, pick,
                               max_it, rtol)
    bounds, growths = _euler_bounds(np.array(ritz), h)
    return LayerStability(k, ritz, float(np.min(bounds)), h, float(np.max(growths)), its, conv)


def _verlet_layer(lin, k, shape, h, max_it, rtol):
    r"""A Verlet layer: Arnoldi on :math:`A_{k,2}A_{k,1}`; its eigenvalues :math:`\nu` are
    real and non-negative for monotone :math:`\sigma` (round-off aside), and the bound is
    :math:`2/\sqrt{r_k\nu_{\max}}`, :math:`r_k = c_k/h`."""
    ratio = lin.scheme.coefficient(k) / h

    def apply(v):
        return lin.forcing_action(k, lin.forcing_action(k, v, half=0), half=1)

    ritz, its, conv = _arnoldi(lin, apply, shape,
                               lambda mu: (int(np.argmin(mu.real)), int(np.argmax(mu.real))),
                               max_it, rtol)
    nu = np.array(ritz)
    lo, hi = float(np.min(nu.real)), float(np.max(nu.real))
    bound = 2.0 / math.sqrt(ratio * hi) if hi > 0 else math.inf
    tol = 1e-10 * max(abs(hi), 1.0)
    if lo < -tol or float(np.max(np.abs(nu.imag))) > tol:  # non-monotone: nu leaves [0, inf)
        bound = 0.0
    growth = max(_leapfrog_growth(ratio * lo, h), _leapfrog_growth(ratio * hi, h))
    return LayerStability(k, (lo, hi), bound, h, growth, its, conv)


def _imex_layer(lin, k, shape, h, max_it, rtol):
    r"""An IMEX layer: :math:`\rho(J_k(h))` by Arnoldi on the layer's tangent-linear map, and
    the bound by bisection on :math:`\rho(S_s(I + sB_k)) \le 1 + 10^{-9}`."""
    def top(mu):
        return (int(np.argmax(np.abs(mu))),)

    ritz, its, conv = _arnoldi(lin, lambda v: lin.action(k, (v,))[0], shape, top, max_it, rtol)
    growth = abs(ritz[0])

    def stable(s):
        nonlocal conv
        scheme = lin.scheme.with_step(s)
        r, _, c = _arnoldi(lin, lambda v: scheme.implicit_step(v + s * lin.forcing_action(k, v)),
                           shape, top, max_it, rtol)
        conv = conv and c
        return abs(r[0]) <= 1.0 + 1e-9

    if not stable(1e-6 * h):
        return LayerStability(k, ritz, 0.0, h, growth, its, conv)
    lo, hi = 1e-6 * h, h
    while stable(hi):
        lo, hi = hi, 2.0 * hi
        if hi > 2.0**10 * h:
            return LayerStability(k, ritz, math.inf, h, growth, its, conv)
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if stable(mid) else (lo, mid)
    return LayerStability(k, ritz, lo, h, growth, its, conv)


def stability_report(network: Network, theta: np.ndarray, x: np.ndarray, *, max_it: int = 100,
                     rtol: float = 1e-10) -> StabilityReport:
    r"""The linear stability of every layer of ``network`` at ``(theta, x)``. Collective.

    The bounds (derived in :mod:`pdeopt.analysis.stability`): parabolic
    :math:`h \le 2/\lambda_{\max}(A_k)`; leapfrog :math:`h \le 2/\sqrt{\lambda_{\max}(A_k)}`;
    Verlet :math:`h \le 2/\sqrt{r_k\nu_{\max}}` with :math:`\nu_{\max}` the spectral radius of
    :math:`A_{k,2}A_{k,1}` and :math:`r_0 = \tfrac32`, :math:`r_k = 1`; IMEX the first
    :math:`s` with :math:`\rho(S_s(I + sB_k)) > 1`, by bisection;
    forward Euler :math:`h \le \min_\mu -2\operatorname{Re}\mu/|\mu|^2` over the eigenvalues
    :math:`\mu` of :math:`B_k` (0 if one has :math:`\operatorname{Re}\mu \ge 0`), with
    :math:`A_k = K_k^*\operatorname{diag}\sigma'(z_k)K_k`,
    :math:`B_k = \operatorname{diag}\sigma'(z_k)K_k`. For forward Euler the eigenvalues are the
    Ritz values of an Arnoldi iteration: the extreme ones, which set the growth factor; the
    bound from them is exact when the Krylov space is invariant (small problems).

    Parameters
    ----------
    network, theta, x
        As for :func:`layer_jacobians`.
    max_it
        The Lanczos/Arnoldi iteration cap per layer (an integer :math:`\ge 1`).
    rtol
        The relative tolerance on the residual of the Ritz pairs, in :math:`(0, 1]`.

    Raises
    ------
    InputError
        For a network, controls or input that cannot be used.
    OptionError
        For a scheme without a derived bound, or bad ``max_it``/``rtol``.
    """
    max_it, rtol, name = _check_options(network, max_it, rtol)
    lin = layer_jacobians(network, theta, x)
    h = float(network.step)
    layers = tuple(_layer(lin, k, _KINDS[name], name, h, max_it, rtol)
                   for k in range(network.N))
    return StabilityReport(name, h, layers)


def step_bound(network: Network, theta: np.ndarray, x: np.ndarray, *, max_it: int = 30,
               rtol: float = 1e-6) -> float:
    """The largest step stable at every layer: the least bound of :func:`stability_report`,
    with a looser tolerance and fewer iterations by default. Collective.

    An unconverged estimate is still returned (a cheap constraint); call
    :func:`stability_report` to see the convergence per layer.
    """
    return stability_report(network, theta, x, max_it=max_it, rtol=rtol).bound


def stability_column(network: Network, x: np.ndarray, *, max_it: int = 30,
                     rtol: float = 1e-6):
    r"""A trust-region monitor column: ``f(theta)``, the smallest per-layer margin
    :math:`\min_k \text{bound}_k/h - 1` of :func:`step_bound` at the network's controls
    ``theta[:network.layout.size]`` (the leading block of a
    :class:`~pdeopt.model.model.Model`'s controls). Negative means some layer's step is
    past its bound. Collective.

    Each call costs about ``max_it`` tangent-linear layer applications per layer on the block
    ``x``: pass a few samples, e.g. ``x[:, :16]``::

        TrustRegionNewtonCG(Jhat, monitor_columns={
            "margin": pdeopt.stability_column(model.network, x[:, :16])})
    """
    max_it, rtol, _ = _check_options(network, max_it, rtol)
    network.check_input(x)
    size, h = network.layout.size, float(network.step)

    def margin(theta: np.ndarray) -> float:
        bound = step_bound(network, np.asarray(theta)[:size], x, max_it=max_it, rtol=rtol)
        return bound / h - 1.0
    return margin
