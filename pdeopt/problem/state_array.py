"""The distributed network state as a variable on the pyadjoint tape."""

import numpy as np
from pyadjoint.overloaded_type import OverloadedType

__all__ = ["StateArray"]


class StateArray(OverloadedType):
    """The owned rows of a batch × channels block ``(n_owned, batch, channels)``.

    It is an intermediate of the tape (the network output read by a loss), never a control:
    its adjoint, tangent-linear and second-order adjoint values are NumPy arrays of the same
    shape.
    """

    def __init__(self, array):
        super().__init__()
        self.array = array

    def _ad_create_checkpoint(self):
        return self.array

    def _ad_restore_at_checkpoint(self, checkpoint):
        return StateArray(checkpoint)

    def _ad_init_zero(self, dual=False):
        return StateArray(np.zeros_like(self.array))

    def __repr__(self):
        return f"StateArray(shape={self.array.shape})"
