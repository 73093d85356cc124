"""Per-layer controls and the packing of all controls into one flat array."""

from collections import namedtuple
from collections.abc import Iterable

import numpy as np

from pdeopt.errors import InputError

__all__ = ["LayerControl", "ControlLayout"]

#: The control of one layer: mixing matrices ``weight`` (S, C_out, C_in) and ``bias`` (C_out,).
#: Derivatives with respect to a layer's control have the same structure.
LayerControl = namedtuple("LayerControl", ["weight", "bias"])


class ControlLayout:
    """Named blocks of one flat control vector.

    Parameters
    ----------
    blocks
        ``(name, shape)`` pairs, in storage order.
    """

    def __init__(self, blocks: Iterable[tuple[str, tuple[int, ...]]]):
        self.names, self.shapes, self.offsets = [], [], [0]
        for name, shape in blocks:
            self.names.append(name)
            self.shapes.append(tuple(int(d) for d in shape))
            self.offsets.append(self.offsets[-1] + int(np.prod(shape, dtype=int)))
        if len(set(self.names)) != len(self.names):
            raise InputError(f"duplicate control names in {self.names}.")

    @property
    def size(self) -> int:
        """Total number of scalar controls."""
        return self.offsets[-1]

    def slice(self, name: str) -> slice:
        """The entries of block ``name`` in the flat vector."""
        i = self.names.index(name)
        return slice(self.offsets[i], self.offsets[i + 1])

    def view(self, flat: np.ndarray, name: str) -> np.ndarray:
        """Block ``name`` of ``flat`` as an array of its shape (a view, not a copy)."""
        return flat[self.slice(name)].reshape(self.shapes[self.names.index(name)])

    def views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """All blocks of ``flat`` by name (views)."""
        if flat.shape != (self.size,):
            raise InputError(f"control vector has shape {flat.shape}, expected ({self.size},).")
        return {n: self.view(flat, n) for n in self.names}

    def __add__(self, other: "ControlLayout") -> "ControlLayout":
        return ControlLayout(list(zip(self.names, self.shapes)) +
                             list(zip(other.names, other.shapes)))

    def __repr__(self):
        return f"ControlLayout({list(zip(self.names, self.shapes))})"
