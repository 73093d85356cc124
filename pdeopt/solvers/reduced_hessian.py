r"""A Hessian action on replicated arrays as a PETSc Python Mat."""

import numpy as np
from petsc4py import PETSc

from pdeopt.control_vec import array_to_vec, vec_to_array

__all__ = ["ReducedHessian"]


class ReducedHessian:
    r"""PETSc Python Mat context: :math:`y = (H(\theta) + sI)\,x`.

    :math:`H(\theta)\,x` is ``action(theta, x)`` at the point set by :meth:`set_point`: a
    functional's ``hessian_action`` (one tangent-linear and one second-order adjoint sweep),
    its ``gauss_newton_action``, or a
    :class:`~pdeopt.solvers.hessian_model.HessianModel`'s ``action``. The shift :math:`s` is
    what TAO's Newton methods add through ``MatShift``.

    Parameters
    ----------
    action
        ``action(theta, direction) -> array`` on replicated arrays.
    size
        The number of controls.
    comm
        The communicator of the control Vec.
    """

    def __init__(self, action, size: int, comm):
        self._action, self.size, self.comm = action, size, comm
        self.theta = None
        self.shift_value = 0.0

    @classmethod
    def petsc_mat(cls, action, like: PETSc.Vec) -> PETSc.Mat:
        """The Python Mat of ``action``, with the row layout of the control Vec ``like`` (not
        ``create``: petsc4py calls a context's ``create`` as a hook)."""
        comm = like.getComm().tompi4py()
        size = like.getSize()
        H = PETSc.Mat().createPython(((like.getLocalSize(), size),) * 2,
                                     context=cls(action, size, comm), comm=comm)
        H.setOption(PETSc.Mat.Option.SYMMETRIC, True)
        H.setUp()
        return H

    def set_point(self, theta: np.ndarray) -> None:
        """Apply the Hessian at ``theta``, unshifted."""
        self.theta, self.shift_value = np.asarray(theta, dtype=float), 0.0

    def shift(self, A, alpha) -> None:
        """``MatShift``: add :math:`\\alpha I`."""
        self.shift_value += alpha

    def mult(self, A, x, y) -> None:
        """``MatMult``: :math:`y = (H(\\theta) + sI)\\,x`."""
        xa = vec_to_array(x, self.size, self.comm)
        Hx = self._action(self.theta, xa)
        if self.shift_value:
            Hx = Hx + self.shift_value * xa
        array_to_vec(Hx, y)
