"""Small analytic objectives as array functionals, for solver tests."""

import numpy as np
from mpi4py import MPI

from pdeopt import ArrayFunctional, Counts


class AnalyticFunctional(ArrayFunctional):
    """``objective``, ``gradient``, ``hessian_action`` of ``f`` on replicated arrays, counted
    as sweeps (an objective a forward, a gradient an adjoint, a Hessian action a second-order
    adjoint). Its Gauss–Newton action is the Hessian's: there is no misfit to split."""

    def __init__(self, f, grad, hess, x0, comm=MPI.COMM_WORLD):
        self.f, self.grad, self.hess = f, grad, hess
        self._point, self._comm = np.asarray(x0, dtype=float), comm
        self._counts = Counts()

    @property
    def size(self):
        return self._point.size

    @property
    def comm(self):
        return self._comm

    @property
    def point(self):
        return self._point.copy()

    @property
    def counts(self):
        return self._counts

    def _count(self, **sweeps):
        self._counts += Counts.of_sweeps(**sweeps)

    def objective(self, x):
        self._count(forward=1)
        return self.f(x)

    def gradient(self, x):
        self._count(adjoint=1)
        return self.grad(x)

    def hessian_action(self, x, d):
        self._count(soa=1)
        return self.hess(x) @ d

    def gauss_newton_action(self, x, d):
        return self.hessian_action(x, d)


def quadratic(n=6, seed=0, comm=MPI.COMM_WORLD):
    r""":math:`\tfrac12 x^TAx - b^Tx`, :math:`A` SPD with condition number 100."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = Q @ np.diag(np.logspace(0, 2, n)) @ Q.T
    b = rng.standard_normal(n)
    return AnalyticFunctional(lambda x: 0.5 * x @ A @ x - b @ x, lambda x: A @ x - b,
                              lambda x: A, np.zeros(n), comm), np.linalg.solve(A, b)


def rosenbrock(comm=MPI.COMM_WORLD):
    r""":math:`(1-x)^2 + 100(y-x^2)^2` from :math:`(-1.2, 1)`."""
    def f(z):
        x, y = z
        return (1 - x) ** 2 + 100 * (y - x * x) ** 2

    def g(z):
        x, y = z
        return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])

    def H(z):
        x, y = z
        return np.array([[2 - 400 * (y - 3 * x * x), -400 * x], [-400 * x, 200.0]])

    return AnalyticFunctional(f, g, H, [-1.2, 1.0], comm)


def saddle(comm=MPI.COMM_WORLD):
    r""":math:`\tfrac12(x^2 - y^2) + \tfrac14 y^4` from the saddle point's neighbourhood
    :math:`(0.5, 10^{-3})`: the Hessian there is indefinite; the minima are :math:`(0, \pm 1)`."""
    return AnalyticFunctional(lambda z: 0.5 * (z[0] ** 2 - z[1] ** 2) + 0.25 * z[1] ** 4,
                              lambda z: np.array([z[0], -z[1] + z[1] ** 3]),
                              lambda z: np.diag([1.0, -1.0 + 3 * z[1] ** 2]),
                              [0.5, 1e-3], comm)
