r"""The reduced Hessian :math:`\nabla^2\hat J(\theta)` as a PETSc Python Mat."""

import numpy as np
from petsc4py import PETSc

from pdeopt.errors import OptionError
from pdeopt.problem.control_array import array_to_vec, vec_to_array

__all__ = ["ReducedHessian"]


class ReducedHessian:
    r"""PETSc Python Mat context: :math:`y = (\nabla^2\hat J(\theta) + sI)\,x`.

    One application is one tangent-linear and one second-order adjoint sweep at the point set
    by :meth:`set_point`; with ``gauss_newton`` it is the Gauss-Newton action (a tangent-linear
    and an adjoint sweep). The shift :math:`s` is what TAO's Newton methods add through
    ``MatShift``.

    Parameters
    ----------
    Jhat
        A reduced functional with ``hessian_action(theta, direction)`` (and
        ``gauss_newton_action``) on replicated arrays and ``size``.
    comm
        The communicator of the control Vec.
    gauss_newton
        Apply the Gauss-Newton Hessian instead of the exact one.
    """

    def __init__(self, Jhat, comm, gauss_newton=False):
        if gauss_newton and not hasattr(Jhat, "gauss_newton_action"):
            raise OptionError(f"{type(Jhat).__name__} has no gauss_newton_action: use the "
                              f"exact Hessian.")
        self.Jhat, self.comm, self.gauss_newton = Jhat, comm, gauss_newton
        self.theta = None
        self.shift_value = 0.0
        self.actions = 0

    @classmethod
    def petsc_mat(cls, Jhat, like: PETSc.Vec, gauss_newton=False) -> PETSc.Mat:
        """The Python Mat, with the row layout of the control Vec ``like`` (not ``create``:
        petsc4py calls a context's ``create`` as a hook)."""
        comm = like.getComm().tompi4py()
        sizes = ((like.getLocalSize(), Jhat.size),) * 2
        H = PETSc.Mat().createPython(sizes, context=cls(Jhat, comm, gauss_newton),
                                  comm=comm)
        H.setOption(PETSc.Mat.Option.SYMMETRIC, True)
        H.setUp()
        return H

    def action(self, theta, direction) -> np.ndarray:
        """The (Gauss-Newton) Hessian action of the current functional, unshifted."""
        if self.gauss_newton:
            return self.Jhat.gauss_newton_action(theta, direction)
        return self.Jhat.hessian_action(theta, direction)

    def set_point(self, theta: np.ndarray, Jhat=None):
        """Apply the Hessian at ``theta``; of ``Jhat`` if given (e.g. the functional of a
        subsample of the batch)."""
        self.theta, self.shift_value = np.asarray(theta, dtype=float), 0.0
        if Jhat is not None:
            self.Jhat = Jhat

    def shift(self, A, alpha):
        self.shift_value += alpha

    def mult(self, A, x, y):
        xa = vec_to_array(x, self.Jhat.size, self.comm)
        Hx = self.action(self.theta, xa)
        if self.shift_value:
            Hx += self.shift_value * xa
        self.actions += 1
        array_to_vec(Hx, y)
