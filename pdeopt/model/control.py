"""Per-layer controls and the packing of all controls into one flat array."""

import math
from collections import namedtuple
from collections.abc import Iterable

import numpy as np

from pdeopt.checks import integer
from pdeopt.data.validation import shown
from pdeopt.errors import InputError, OptionError

__all__ = ["LayerControl", "ControlLayout"]

#: The control of one layer: mixing matrices ``weight`` (S, C_out, C_in) and ``bias`` (C_out,).
#: Derivatives with respect to a layer's control have the same structure.
LayerControl = namedtuple("LayerControl", ["weight", "bias"])


class ControlLayout:
    """Named blocks of one flat control vector.

    Parameters
    ----------
    blocks
        ``(name, shape)`` pairs, in storage order: a string and a tuple of non-negative integers.
    """

    def __init__(self, blocks: Iterable[tuple[str, tuple[int, ...]]]):
        self.names, self.shapes, self.offsets = [], [], [0]
        for block in blocks:
            name, shape = _block(block)
            self.names.append(name)
            self.shapes.append(shape)
            self.offsets.append(self.offsets[-1] + math.prod(shape))
        if len(set(self.names)) != len(self.names):
            raise InputError(f"duplicate control names in {self.names}.")

    @property
    def size(self) -> int:
        """Total number of scalar controls."""
        return self.offsets[-1]

    def _index(self, name: str) -> int:
        if name not in self.names:
            raise OptionError(f"ControlLayout: no control block {name!r}; the blocks are "
                              f"{self.names}.")
        return self.names.index(name)

    def slice(self, name: str) -> slice:
        """The entries of block ``name`` in the flat vector."""
        i = self._index(name)
        return slice(self.offsets[i], self.offsets[i + 1])

    def view(self, flat: np.ndarray, name: str) -> np.ndarray:
        """Block ``name`` of ``flat`` as an array of its shape (a view, not a copy)."""
        return flat[self.slice(name)].reshape(self.shapes[self._index(name)])

    def views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """All blocks of ``flat`` by name (views)."""
        if not isinstance(flat, np.ndarray):
            raise InputError(f"control vector is a {type(flat).__name__}, not a NumPy array; "
                             f"pass np.asarray(theta, dtype=float).")
        if flat.shape != (self.size,):
            raise InputError(f"control vector has shape {flat.shape}, expected ({self.size},).")
        return {n: self.view(flat, n) for n in self.names}

    def __add__(self, other: "ControlLayout") -> "ControlLayout":
        return ControlLayout(list(zip(self.names, self.shapes)) +
                             list(zip(other.names, other.shapes)))

    def __repr__(self):
        return f"ControlLayout({list(zip(self.names, self.shapes))})"


def _block(block) -> tuple[str, tuple[int, ...]]:
    """A ``(name, shape)`` pair checked: a string and non-negative integer extents."""
    try:
        name, shape = block
        shape = tuple(shape)
    except (TypeError, ValueError):
        raise InputError(f"ControlLayout: block={shown(block)} must be a pair (name, shape) with a "
                         f"tuple shape, e.g. ('layers.bias', (4, 8)).") from None
    if not isinstance(name, str):
        raise InputError(f"ControlLayout: block name {name!r} must be a string.")
    return name, tuple(integer("ControlLayout", f"shape of {name!r}", d, low=0,
                               remedy="give a tuple of non-negative integers") for d in shape)
