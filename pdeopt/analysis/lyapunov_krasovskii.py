r"""Learned Lyapunov–Krasovskii functionals of delay layers, and their certificates.

The linear delay equation :math:`x'(t) = -a\,x(t) - b\,x(t - \tau)` is the test bed of delay
stability: for :math:`b > |a|` its zero solution is stable exactly for :math:`\tau <
\tau_c = \arccos(-a/b)/\sqrt{b^2 - a^2}` (:meth:`LinearDelayEquation.margin`). A
:class:`~pdeopt.model.schemes.delay.DelayScheme` layer of step :math:`h` with the
:class:`~pdeopt.model.delay_forcing.LinearDelayLaw` advances the ring
:math:`X_k = (x_{k-n+1}, \dots, x_k)` of the last :math:`n` states by one matrix,
:math:`X_{k+1} = A(\tau)X_k` (:meth:`LinearDelayEquation.step_matrix`; the delay
:math:`\tau = (m + s)h` interpolates linearly between layers, so :math:`A` is continuous in
:math:`\tau`).

A Lyapunov–Krasovskii functional of the layer is a function :math:`V(X;\tau) \ge 0` of the
history segment that decreases along every trajectory. :class:`LyapunovKrasovskiiFunctional`
is the family

.. math:: V_\theta(X;\tau) = X^TS(\tau)X, \qquad S(\tau) = \sum_j \ell_j(\tau)S_j,

:math:`\ell_j` piecewise polynomials of degree :math:`d` in :math:`\tau` on the intervals
:math:`[ih, (i + 1)h]` (where :math:`A(\tau)` has its kinks), the controls :math:`\theta` the
symmetric :math:`S_j` at the nodes. A quadratic form of the whole segment is what a
delay-dependent margin needs: the diagonal form :math:`p x^2 + \sum_j w_j x_{k-j}^2` certifies
only delay-independent stability, which :math:`x' = -a x - b x_\tau` lacks for :math:`a < |b|`.

:class:`LyapunovKrasovskiiLoss` learns :math:`\theta` over delays drawn from a law on
:math:`[0, \tau_\max]` and Gaussian history segments: the relative misfit of :math:`V` to
the trajectories' cost to go :math:`h\sum_k\lvert X_k\rvert^2`, plus the squared defect of
the decrease condition :math:`V(X_{k+1}) - V(X_k) \le -h\lvert X_k\rvert^2` (among all
quadratic :math:`V` that satisfy it, the one of least :math:`E[V]`, the research programme's
objective, satisfies it with equality and is the cost to go). ``LyapunovKrasovskiiPC``
(:mod:`pdeopt.solvers.preconditioners.krasovskii`) preconditions the trust region.
:func:`certify` then tests the learned functional at delays
it was not trained on: :math:`V` is a certificate at :math:`\tau` exactly when :math:`S(\tau)
\succ 0` and :math:`\lambda_\max(A^TSA, S) < 1` (the generalised eigenvalue), and decrease is
also tested along trajectories from many test histories.
"""

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from mpi4py import MPI

from pdeopt.checks import instance, integer, real
from pdeopt.errors import InputError
from pdeopt.problem.array_functional import ArrayFunctional
from pdeopt.problem.counts import Counts

__all__ = ["LinearDelayEquation", "LyapunovKrasovskiiFunctional", "LyapunovKrasovskiiLoss",
           "KrasovskiiCertificate", "certify", "cost_to_go",
           "history_covariance", "spectral_radii"]


class LinearDelayEquation:
    r""":math:`x'(t) = -a\,x(t) - b\,x(t - \tau)` and its explicit Euler delay layer.

    Parameters
    ----------
    a, b
        The real coefficients.
    """

    def __init__(self, a: float, b: float):
        owner = type(self).__name__
        self.a = real(owner, "a", a, remedy="the coefficients are finite reals")
        self.b = real(owner, "b", b, remedy="the coefficients are finite reals")

    def __repr__(self):
        return f"LinearDelayEquation(a={self.a:g}, b={self.b:g})"

    def margin(self) -> float:
        r"""The exact delay margin: the largest :math:`\tau_c` such that the zero solution is
        asymptotically stable for every :math:`\tau \in [0, \tau_c)`.

        :math:`0` when :math:`a + b \le 0` (unstable without delay), :math:`\infty` when
        :math:`a \ge |b|` (stable for every delay), and otherwise the first crossing of the
        imaginary axis, :math:`\tau_c = \arccos(-a/b)/\sqrt{b^2 - a^2}`, at frequency
        :math:`\omega = \sqrt{b^2 - a^2}`."""
        a, b = self.a, self.b
        if a + b <= 0.0:
            return 0.0
        if a >= abs(b):
            return np.inf
        return float(np.arccos(-a / b) / np.sqrt(b * b - a * a))

    def step_matrix(self, step: float, delay: float, size: int) -> np.ndarray:
        r"""The layer :math:`X_{k+1} = A X_k` on the ring of the last ``size`` states, oldest
        first: :math:`x_{k+1} = x_k - h\big(a x_k + b((1 - s)x_{k-m} + s\,x_{k-m-1})\big)`,
        :math:`\tau = (m + s)h` (the :class:`~pdeopt.model.schemes.delay.DelayScheme` step
        with :class:`~pdeopt.model.delay_forcing.LinearDelayLaw`).

        Parameters
        ----------
        step
            :math:`h > 0`.
        delay
            :math:`\tau \in [0, (n - 2)h]`, ``n = size``.
        size
            The ring's length :math:`n \ge 2`.
        """
        return _step_matrices(self, step, np.array([delay], dtype=float), size, "step_matrix")[0]

    def discrete_margin(self, step: float, size: int, *, resolution: float | None = None,
                        bisections: int = 40) -> float:
        r"""The smallest delay at which the layer's spectral radius reaches 1 (the discrete
        delay margin), by a scan on the grid of spacing ``resolution`` (default :math:`h/8`)
        and bisection; ``inf`` when no delay up to :math:`(n - 2)h` is unstable."""
        h = real("discrete_margin", "step", step, low=0.0, low_open=True,
                 remedy="the step is positive")
        top = (integer("discrete_margin", "size", size, low=2,
                       remedy="the ring holds at least the present and one past state") - 2) * h
        d = h / 8 if resolution is None else real(
            "discrete_margin", "resolution", resolution, low=0.0, low_open=True,
            remedy="the scan's spacing is positive")
        taus = np.linspace(0.0, top, int(np.ceil(top / d)) + 1)
        radius = spectral_radii(self, h, taus, size)
        unstable = np.flatnonzero(radius >= 1.0)
        if unstable.size == 0:
            return np.inf
        i = unstable[0]
        if i == 0:
            return 0.0
        low, high = taus[i - 1], taus[i]
        for _ in range(bisections):
            mid = 0.5 * (low + high)
            if spectral_radii(self, h, np.array([mid]), size)[0] >= 1.0:
                high = mid
            else:
                low = mid
        return float(high)


def spectral_radii(equation: LinearDelayEquation, step: float, taus: np.ndarray,
                   size: int) -> np.ndarray:
    """:math:`\\rho(A(\\tau))` of the layer at each delay of ``taus``."""
    return _radii(_step_matrices(equation, step, taus, size, "spectral_radii"))


def _radii(A):
    return np.abs(np.linalg.eigvals(A)).max(axis=-1)


def _step_matrices(equation, h, taus, n, owner):
    """The layer matrices :math:`A(\\tau)` at every delay of ``taus``, ``(len, n, n)``."""
    taus = np.asarray(taus, dtype=float)
    top = (n - 2) * h
    if taus.ndim != 1 or not np.all(np.isfinite(taus)) or np.any(taus < 0.0) or \
            np.any(taus > top * (1.0 + 1e-12)):
        raise InputError(f"{owner}: the delays must be finite and in [0, (size - 2) h = "
                         f"{top:g}] (the ring of {n} states holds x(t - tau) and the layer "
                         f"before it); got {taus if taus.size < 8 else taus[:8]}.")
    d = np.minimum(taus / h, n - 2)
    m = np.minimum(np.floor(d).astype(int), n - 2)
    s = d - m
    A = np.zeros((taus.size, n, n))
    A[:, np.arange(n - 1), np.arange(1, n)] = 1.0
    rows = np.arange(taus.size)
    A[:, n - 1, n - 1] = 1.0 - h * equation.a
    A[rows, n - 1, n - 1 - m] -= h * equation.b * (1.0 - s)
    fractional = s > 0.0
    A[rows[fractional], n - 1, n - 2 - m[fractional]] -= h * equation.b * s[fractional]
    return A


def history_covariance(step: float, size: int, *, correlation: float = 1.0,
                       roughness: float = 1.0) -> np.ndarray:
    r"""The covariance of Gaussian history segments :math:`X = (x(t_{k-n+1}), \dots,
    x(t_k))`: an Ornstein–Uhlenbeck path, :math:`\Sigma_{ij} = e^{-\lvert t_i -
    t_j\rvert/\ell}`, plus white noise of variance ``roughness`` (so :math:`\Sigma \succ 0`).

    Parameters
    ----------
    step
        :math:`h`, the spacing of the segment's points.
    size
        The segment's length :math:`n`.
    correlation
        :math:`\ell > 0`, the correlation time.
    roughness
        The white noise's variance, :math:`\ge 0`.
    """
    owner = "history_covariance"
    h = real(owner, "step", step, low=0.0, low_open=True, remedy="the step is positive")
    n = integer(owner, "size", size, low=1, remedy="a segment holds at least one state")
    ell = real(owner, "correlation", correlation, low=0.0, low_open=True,
               remedy="the correlation time is positive")
    noise = real(owner, "roughness", roughness, low=0.0, remedy="a variance is non-negative")
    t = h * np.arange(n)
    return np.exp(-np.abs(t[:, None] - t[None, :]) / ell) + noise * np.eye(n)


class LyapunovKrasovskiiFunctional:
    r"""The learned family :math:`V_\theta(X;\tau) = X^TS(\tau)X` on the ring :math:`X` of
    the last :math:`n` states (oldest first, as in a
    :class:`~pdeopt.model.schemes.delay.DelayScheme`).

    :math:`S(\tau) = \sum_j \ell_j(\tau) S_j`, :math:`\ell_j` the Lagrange polynomials of
    degree :math:`d` on the nodes :math:`\tau_j = jh/d` of each interval :math:`[ih, (i +
    1)h]`, continuous across intervals; :math:`S_j` symmetric. The controls are the nodes'
    values, node by node, the :math:`n(n + 1)/2` entries of :math:`S_j` on and below the
    diagonal (``numpy.tril_indices`` order). :math:`V \ge 0` is part of the certificate
    (:func:`certify` checks :math:`S(\tau) \succ 0`), not of the parametrisation: linear in
    :math:`\theta`, the learning problem is a convex quadratic.

    Parameters
    ----------
    step
        The layer's step :math:`h > 0`.
    max_delay
        The largest delay in layers, an integer :math:`M \ge 1`; the ring has :math:`n = M +
        2` states (those of a ``DelayScheme(..., learned=True, max_delay=M)``) and
        :math:`\tau \in [0, Mh]`.
    degree
        :math:`d \ge 1`, the polynomials' degree on each interval.
    """

    def __init__(self, step: float, max_delay: int, *, degree: int = 4):
        owner = type(self).__name__
        self.h = real(owner, "step", step, low=0.0, low_open=True, remedy="the step is positive")
        self.max_delay = integer(owner, "max_delay", max_delay, low=1,
                                 remedy="the largest delay is a whole number of layers >= 1")
        self.degree = integer(owner, "degree", degree, low=1,
                              remedy="the polynomials on each interval have degree >= 1")
        self.n = self.max_delay + 2
        self._tril = np.tril_indices(self.n)
        self.nodes = self.h * np.arange(self.max_delay * self.degree + 1) / self.degree
        self.per_node = self._tril[0].size
        self.size = self.nodes.size * self.per_node

    def __repr__(self):
        return (f"LyapunovKrasovskiiFunctional(step={self.h:g}, max_delay={self.max_delay}, "
                f"degree={self.degree})")

    @property
    def max_tau(self) -> float:
        """The largest delay :math:`Mh` the family covers."""
        return self.max_delay * self.h

    def initial_controls(self) -> np.ndarray:
        r""":math:`S_j = I`: :math:`V = \lvert X\rvert^2` at every delay."""
        return np.tile(np.eye(self.n)[self._tril], self.nodes.size)

    def check_delays(self, taus, owner: str) -> np.ndarray:
        """``taus`` as a 1-d array in :math:`[0, Mh]`, or an :class:`InputError`."""
        taus = np.atleast_1d(np.asarray(taus, dtype=float))
        if taus.ndim != 1 or not np.all(np.isfinite(taus)) or np.any(taus < 0.0) or \
                np.any(taus > self.max_tau * (1.0 + 1e-12)):
            raise InputError(f"{owner}: delays must be finite and in [0, max_delay * step = "
                             f"{self.max_tau:g}]; build the functional with a larger max_delay "
                             f"for longer delays.")
        return taus

    def weights(self, taus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The nodes ``(len, d + 1)`` each delay interpolates from and their Lagrange weights."""
        d = self.degree
        x = np.minimum(taus / self.h, self.max_delay)
        i = np.minimum(np.floor(x).astype(int), self.max_delay - 1)
        s = x - i
        loc = np.arange(d + 1) / d
        w = np.ones((taus.size, d + 1))
        for j in range(d + 1):
            for q in range(d + 1):
                if q != j:
                    w[:, j] *= (s - loc[q]) / (loc[j] - loc[q])
        return i[:, None] * d + np.arange(d + 1), w

    def symmetric(self, theta: np.ndarray) -> np.ndarray:
        """The nodes' symmetric :math:`S_j` ``(nodes, n, n)`` from their lower triangles
        ``theta``."""
        lo, up = self._tril
        S = np.zeros((self.nodes.size, self.n, self.n))
        S[:, lo, up] = S[:, up, lo] = np.asarray(theta, dtype=float).reshape(-1, self.per_node)
        return S

    def lower(self, S: np.ndarray) -> np.ndarray:
        """The transpose of :meth:`symmetric` read as a map of the lower triangles: the lower
        triangles of ``S`` ``(nodes, n, n)``, flat."""
        lo, up = self._tril
        return S[:, lo, up].ravel()

    def interpolate(self, theta: np.ndarray, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """:math:`S(\tau)` from the nodes and weights of :meth:`weights`, ``(len, n, n)``."""
        return np.einsum("tj,tjab->tab", w, self.symmetric(theta)[idx])

    def scatter(self, idx: np.ndarray, w: np.ndarray, G: np.ndarray) -> np.ndarray:
        r"""The transpose of :meth:`interpolate`: the controls' gradient from the symmetric
        gradients ``G`` ``(len, n, n)`` of :math:`S(\tau)` (an entry off the diagonal is two
        entries of :math:`S`)."""
        n = self.n
        out = np.zeros((self.nodes.size, n, n))
        np.add.at(out, idx.ravel(), (w[:, :, None, None] * G[:, None]).reshape(-1, n, n))
        lo, up = self._tril
        return (out[:, lo, up] + out[:, up, lo] * (lo != up)).ravel()

    def matrices(self, theta: np.ndarray, taus) -> np.ndarray:
        r""":math:`S(\tau)` at each delay, ``(len, n, n)``: :math:`V(X;\tau) = X^TS(\tau)X`."""
        taus = self.check_delays(taus, "LyapunovKrasovskiiFunctional.matrices")
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (self.size,):
            raise InputError(f"LyapunovKrasovskiiFunctional: theta must be a vector of size "
                             f"{self.size}, got shape {theta.shape}.")
        return self.interpolate(theta, *self.weights(taus))

    def __call__(self, theta: np.ndarray, X: np.ndarray, tau: float) -> np.ndarray:
        r""":math:`V_\theta(X;\tau)` of ring states ``X`` ``(..., n)``, oldest first."""
        X = np.asarray(X, dtype=float)
        if X.shape[-1:] != (self.n,):
            raise InputError(f"LyapunovKrasovskiiFunctional: a history segment holds the ring's "
                             f"{self.n} states (max_delay + 2), oldest first; got an array of "
                             f"shape {X.shape}.")
        S = self.matrices(theta, [tau])[0]
        return np.einsum("...i,ij,...j->...", X, S, X)


class LyapunovKrasovskiiLoss(ArrayFunctional):
    r"""The loss that learns :math:`V_\theta` from trajectories over sampled delays.

    Over the delays :math:`\tau_t` (:math:`A_t = A(\tau_t)`, :math:`S_t = S(\tau_t)`) and
    Gaussian initial segments :math:`X_0 \sim N(0, \Sigma)`,

    .. math:: \hat J(\theta) = \frac1N\sum_t \frac{E\big[(V(X_0) - c_K(X_0))^2\big]}
       {E\big[c_K(X_0)^2\big]} + \mu\,\frac{E\big[(V(X_1) - V(X_0) + h\lvert X_0
       \rvert^2)^2\big]}{E\big[(h\lvert X_0\rvert^2)^2\big]},

    the relative misfit of :math:`V` to the trajectory's cost to go :math:`c_K(X_0) =
    h\sum_{k<K}\lvert X_k\rvert^2 = X_0^TC_KX_0` (:math:`C_K = h\sum_{k<K}A^{kT}A^k`,
    summed by doubling), and :math:`\mu` times the defect of the decrease condition along
    the first layer. The misfit counts only delays whose cost to go has settled (over
    :math:`2K` layers it grows by less than 1 %, :attr:`settled`): past the margin a
    trajectory has no finite cost to go, and only the defect acts. The exact cost to go
    decreases by :math:`h\lvert X\rvert^2 - h\lvert X_K\rvert^2` per layer, so a close fit
    certifies wherever :math:`\lVert A^K\rVert < 1`; the defect asks for the decrease
    directly. Both expectations are closed forms, :math:`E[(X^TMX)^2] =
    2\operatorname{tr}(M\Sigma M\Sigma) + \operatorname{tr}(M\Sigma)^2 =: q(M)`. Among the
    delays a whole number of layers apart, the scale of :math:`V` grows like :math:`1/(1 -
    \rho(A)^2)` towards the margin: the relative misfit weighs them alike.

    The loss is quadratic in :math:`\theta`. Gradient: with :math:`G(M) = 4\Sigma M\Sigma +
    2\operatorname{tr}(M\Sigma)\Sigma`, :math:`G_S = w_tG(S - C_K) + \mu w_0(AG(M)A^T -
    G(M))`, :math:`M = A^TSA - S + hI`, scattered to the nodes; the Hessian's action is the
    same map of :math:`\dot S` with :math:`(\dot S, A^T\dot SA - \dot S)` for the residuals,
    and the Gauss–Newton action is the Hessian's.

    Parameters
    ----------
    functional
        The :class:`LyapunovKrasovskiiFunctional` :math:`V_\theta`.
    equation
        The :class:`LinearDelayEquation`.
    delays
        The sampled delays :math:`\tau_t` in :math:`[0, Mh]`, drawn from the training law.
    covariance
        :math:`\Sigma`, SPD ``(n, n)``; default :func:`history_covariance`.
    horizon
        :math:`K`, the layers of the cost to go (long enough that :math:`\lVert A^K\rVert <
        1` up to the delays to certify: near the margin :math:`\rho(A) \to 1`).
    defect_weight
        :math:`\mu \ge 0`.
    theta
        The starting point (default :meth:`LyapunovKrasovskiiFunctional.initial_controls`).
    comm
        The communicator the controls are replicated over (every rank holds every delay).
    """

    def __init__(self, functional: LyapunovKrasovskiiFunctional, equation: LinearDelayEquation,
                 delays, *, covariance: np.ndarray | None = None, horizon: int = 2 ** 14,
                 defect_weight: float = 1.0, theta=None, comm: MPI.Comm = MPI.COMM_SELF):
        owner = type(self).__name__
        self.V = instance(owner, "functional", functional, LyapunovKrasovskiiFunctional,
                          remedy="build it with pdeopt.LyapunovKrasovskiiFunctional",
                          error=InputError)
        self.equation = instance(owner, "equation", equation, LinearDelayEquation,
                                 remedy="build it with pdeopt.LinearDelayEquation(a, b)",
                                 error=InputError)
        n, h = functional.n, functional.h
        self.delays = functional.check_delays(delays, owner)
        Sigma = history_covariance(h, n) if covariance is None else \
            np.asarray(covariance, dtype=float)
        if Sigma.shape != (n, n) or not np.all(np.isfinite(Sigma)) or \
                not np.allclose(Sigma, Sigma.T) or np.linalg.eigvalsh(Sigma)[0] <= 0.0:
            raise InputError(f"{owner}: covariance must be a symmetric positive definite "
                             f"({n}, {n}) matrix (the ring's length); see history_covariance.")
        self.horizon = integer(owner, "horizon", horizon, low=1,
                               remedy="the cost to go sums at least one layer")
        self.mu = real(owner, "defect_weight", defect_weight, low=0.0,
                       remedy="the defect's weight is non-negative")
        self.Sigma = Sigma
        self._comm = comm
        self._A = _step_matrices(equation, h, self.delays, n, owner)
        self._AT = np.swapaxes(self._A, 1, 2)
        self._idx, self._w = functional.weights(self.delays)
        self.cost_to_go = cost_to_go(self._A, h, self.horizon)
        N = self.delays.size
        q_K = self._q(self.cost_to_go)
        #: Whether the cost to go has settled: over 2K layers it grows by less than 1 %.
        self.settled = self._q(cost_to_go(self._A, h, 2 * self.horizon) - self.cost_to_go) < \
            1e-4 * q_K
        self._w_value = np.where(self.settled, 1.0 / (N * q_K), 0.0)
        self._w_defect = self.mu / (N * h * h * (2.0 * np.sum(Sigma * Sigma) +
                                                 np.trace(Sigma) ** 2))
        self._counts = Counts()
        self._point = self.check_point(functional.initial_controls() if theta is None else theta)
        self._at = None

    size = property(lambda self: self.V.size)
    comm = property(lambda self: self._comm)
    point = property(lambda self: self._point.copy())
    counts = property(lambda self: self._counts)

    def _count(self, **sweeps):
        self._counts = self._counts + Counts.of_sweeps(**sweeps)

    def _q(self, M):
        """:math:`q(M_t)` for each delay."""
        MS = M @ self.Sigma
        return 2.0 * np.einsum("tab,tba->t", MS, MS) + np.trace(MS, axis1=1, axis2=2) ** 2

    def _G(self, M, w):
        """:math:`w_tG(M_t)`."""
        MS = M @ self.Sigma
        tr = np.trace(MS, axis1=1, axis2=2)
        return w[..., None, None] * (4.0 * self.Sigma @ MS + 2.0 * tr[:, None, None] * self.Sigma)

    def _defect(self, S):
        """:math:`A^TSA - S` (add :math:`hI` for the defect itself)."""
        return self._AT @ S @ self._A - S

    def _state(self, theta):
        """``(S, M)`` at ``theta``, :math:`M` the defect (re-evaluated only when ``theta``
        changes)."""
        theta = self.check_point(theta, "the controls")
        if self._at is None or not np.array_equal(theta, self._at[0]):
            S = self.V.interpolate(theta, self._idx, self._w)
            M = self._defect(S)
            M[:, np.arange(self.V.n), np.arange(self.V.n)] += self.V.h
            self._at = (theta, S, M)
            self._point = theta.copy()
        return self._at[1:]

    def _back(self, value_residual, defect):
        """The controls' gradient of the residuals (or, for the Hessian, of their tangents)."""
        G_S = self._G(value_residual, self._w_value)
        if self.mu > 0.0:
            G_d = self._G(defect, self._w_defect)
            G_S += self._A @ G_d @ self._AT - G_d
        return self.V.scatter(self._idx, self._w, G_S)

    def node_curvatures(self) -> np.ndarray:
        r""":math:`c_j = \sum_t \ell_j(\tau_t)^2(w_t + \mu w_0)` at each node: the Hessian's
        block of node :math:`j` is :math:`4c_j\,\Sigma\otimes\Sigma` in the value term
        (exactly) and in the defect's scale."""
        c = np.zeros(self.V.nodes.size)
        np.add.at(c, self._idx.ravel(),
                  (self._w ** 2 * (self._w_value + self._w_defect)[:, None]).ravel())
        return c

    def parts(self, theta: np.ndarray) -> tuple[float, float]:
        r"""The two terms of :math:`\hat J`: the relative misfit to the cost to go and the
        (weighted) defect."""
        S, M = self._state(theta)
        return float(np.sum(self._w_value * self._q(S - self.cost_to_go))), \
            float(np.sum(self._w_defect * self._q(M)))

    def objective(self, theta):
        self._count(forward=1)
        return sum(self.parts(theta))

    def gradient(self, theta):
        S, M = self._state(theta)
        self._count(adjoint=1)
        return self._back(S - self.cost_to_go, M)

    def hessian_action(self, theta, direction):
        self._count(tlm=1, soa=1)
        direction = self.check_point(direction, "the direction")
        dS = self.V.interpolate(direction, self._idx, self._w)
        return self._back(dS, self._defect(dS))

    def gauss_newton_action(self, theta, direction):
        """The Hessian's action: the loss is quadratic in :math:`\theta`."""
        return self.hessian_action(theta, direction)


def cost_to_go(A: np.ndarray, step: float, horizon: int) -> np.ndarray:
    r""":math:`C_K = h\sum_{k<K}A^{kT}A^k` for each matrix of ``A`` ``(len, n, n)``, by
    doubling (:math:`C_{2j} = C_j + A^{jT}C_jA^j`): :math:`X_0^TC_KX_0 = h\sum_{k<K}\lvert
    A^kX_0\rvert^2`."""
    n = A.shape[-1]
    block = np.broadcast_to(step * np.eye(n), A.shape).copy()  # C_j, j = 2^i
    power = A.copy()  # A^j
    total = np.zeros_like(A)  # C_r
    total_power = np.broadcast_to(np.eye(n), A.shape).copy()  # A^r
    K = horizon
    while K:
        if K & 1:
            total += np.swapaxes(total_power, 1, 2) @ block @ total_power
            total_power = power @ total_power
        K >>= 1
        if K:
            block = block + np.swapaxes(power, 1, 2) @ block @ power
            power = power @ power
    return total


@dataclass
class KrasovskiiCertificate:
    r"""What :func:`certify` found on its grid of delays.

    Attributes
    ----------
    delays
        The delays tested.
    ratio
        :math:`\lambda_\max(A^TSA, S)` at each (:math:`\infty` where :math:`S \not\succ 0`):
        :math:`V(AX) \le \lambda V(X)` for every segment, with equality for one.
    decrease
        Whether :math:`V` decreased at every step of every test trajectory.
    certified
        ``ratio < 1`` and ``decrease``.
    certified_delay
        The largest tested delay up to which every tested delay is certified (0 if the first
        is not).
    spectral_radius
        :math:`\rho(A(\tau))`: no quadratic :math:`V` certifies a delay where it is
        :math:`\ge 1`.
    """

    delays: np.ndarray
    ratio: np.ndarray
    decrease: np.ndarray
    certified: np.ndarray
    certified_delay: float
    spectral_radius: np.ndarray


def certify(functional: LyapunovKrasovskiiFunctional, theta: np.ndarray,
            equation: LinearDelayEquation, delays, *, histories: int = 256, steps: int = 400,
            seed: int = 0) -> KrasovskiiCertificate:
    r"""Test :math:`V_\theta(\cdot;\tau)` as a Lyapunov–Krasovskii certificate at each delay.

    At each :math:`\tau`: the exact test, :math:`S(\tau) \succ 0` and :math:`\lambda_\max(A^TSA,
    S) < 1` (``scipy.linalg.eigh``), and the dense test, :math:`V(X_{k+1}) < V(X_k)` along
    ``steps`` layers of ``histories`` trajectories from random segments (Gaussian with the
    :func:`history_covariance`, constant, and oscillating at the frequencies up to the
    Nyquist rate), taken until :math:`V` falls below :math:`10^{-12}` of its start.

    Parameters
    ----------
    functional, theta
        The learned functional and its controls.
    equation
        The :class:`LinearDelayEquation`.
    delays
        The delays to test, increasing, in :math:`[0, Mh]`.
    histories, steps, seed
        The dense test's trajectories, their length and the random generator's seed.
    """
    owner = "certify"
    V = functional
    taus = V.check_delays(delays, owner)
    if np.any(np.diff(taus) <= 0.0):
        raise InputError(f"{owner}: the delays must increase (the certified delay is the end of "
                         f"the first run of certified delays).")
    theta = np.asarray(theta, dtype=float)
    if theta.shape != (V.size,) or not np.all(np.isfinite(theta)):
        raise InputError(f"{owner}: theta must be a finite vector of size {V.size}.")
    count = integer(owner, "histories", histories, low=3, remedy="test at least 3 histories")
    K = integer(owner, "steps", steps, low=1, remedy="test at least one step")
    n, h = V.n, V.h
    rng = np.random.default_rng(seed)
    t = h * np.arange(n)
    freq = np.linspace(0.0, np.pi / h, count // 3)
    X0 = np.concatenate([
        rng.multivariate_normal(np.zeros(n), history_covariance(h, n), count - 2 * (count // 3)),
        np.cos(freq[:, None] * t + rng.uniform(0, 2 * np.pi, (freq.size, 1))),
        np.ones((count // 3, n)) * rng.standard_normal((count // 3, 1))])
    A = _step_matrices(equation, h, taus, n, owner)
    S = V.matrices(theta, taus)
    ratio = np.full(taus.size, np.inf)
    decrease = np.zeros(taus.size, dtype=bool)
    for i in range(taus.size):
        try:
            ratio[i] = sla.eigh(A[i].T @ S[i] @ A[i], S[i], eigvals_only=True)[-1]
        except np.linalg.LinAlgError:  # S not positive definite
            continue
        X, v = X0, np.einsum("ki,ij,kj->k", X0, S[i], X0)
        floor = 1e-12 * v
        ok = bool(np.all(v > 0.0))
        for _ in range(K):
            X = X @ A[i].T
            w = np.einsum("ki,ij,kj->k", X, S[i], X)
            live = v > floor
            if np.any(w[live] >= v[live]):
                ok = False
                break
            if not np.any(live):
                break
            v = w
        decrease[i] = ok
    certified = (ratio < 1.0) & decrease
    bad = np.flatnonzero(~certified)
    last = taus.size if bad.size == 0 else bad[0]
    return KrasovskiiCertificate(taus, ratio, decrease, certified,
                                 float(taus[last - 1]) if last > 0 else 0.0, _radii(A))
