"""Replicated control vectors on the pyadjoint tape."""

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc
from pyadjoint.overloaded_type import OverloadedType

from pdeopt.control_vec import array_to_vec, create_control_vec, vec_to_array

__all__ = ["ControlArray", "as_array"]


def as_array(value):
    """The NumPy array behind a :class:`ControlArray`, an array, or ``None``."""
    return value.array if isinstance(value, ControlArray) else value


class ControlArray(OverloadedType):
    r"""A flat control vector :math:`\theta\in\mathbb{R}^n`, replicated on every rank of ``comm``.

    The inner product is the Euclidean one, so its Riesz map is the identity. As a PETSc Vec
    it is distributed over ``comm`` in PETSc's default layout and gathered on read
    (:mod:`pdeopt.control_vec`): one layout for every parallel mode and no double counting in
    dot products.

    Parameters
    ----------
    array
        The values (copied).
    comm
        The communicator the controls are replicated over.
    """

    def __init__(self, array, comm=MPI.COMM_WORLD):
        super().__init__()
        self.array = np.array(array, dtype=float).reshape(-1)
        self.comm = comm

    def _new(self, array):
        return ControlArray(array, comm=self.comm)

    def _ad_init_object(self, obj):
        return self._new(as_array(obj))

    def _ad_init_zero(self, dual=False):
        return self._new(np.zeros_like(self.array))

    def _ad_convert_riesz(self, value, riesz_map=None):
        return self._new(as_array(value))

    def _ad_create_checkpoint(self):
        return self.array.copy()

    def _ad_restore_at_checkpoint(self, checkpoint):
        restored = ControlArray.__new__(ControlArray)
        OverloadedType.__init__(restored)
        restored.array, restored.comm = checkpoint, self.comm
        return restored

    def _ad_mul(self, other):
        return self._new(self.array * other)

    def _ad_imul(self, other):
        self.array *= other

    def _ad_add(self, other):
        return self._new(self.array + as_array(other))

    def _ad_iadd(self, other):
        self.array += as_array(other)

    def _ad_dot(self, other):
        return float(np.dot(self.array, as_array(other)))

    def _ad_copy(self):
        return self._new(self.array)

    def _ad_dim(self):
        return self.array.size

    @staticmethod
    def _ad_to_list(m):
        return as_array(m).tolist()

    @staticmethod
    def _ad_assign_numpy(dst, src, offset):
        target = as_array(dst)
        target[:] = src[offset:offset + target.size]
        return dst, offset + target.size

    def create_vec(self) -> PETSc.Vec:
        """A PETSc Vec for these controls, in PETSc's default layout over ``comm``."""
        return create_control_vec(self.array.size, self.comm)

    def _ad_to_petsc(self, vec=None):
        vec = self.create_vec() if vec is None else vec
        array_to_vec(self.array, vec)
        return vec

    def _ad_from_petsc(self, vec):
        self.array[:] = vec_to_array(vec, self.array.size, self.comm)

    def __repr__(self):
        return f"ControlArray(size={self.array.size})"
