"""A read-only table of named classes (activations, schemes) whose unknown names are
:class:`~pdeopt.errors.OptionError`\\ s listing the known ones."""

from collections.abc import Iterable, Iterator, Mapping

from pdeopt.errors import OptionError

__all__ = ["Registry"]


class Registry(Mapping):
    """Classes by their ``name`` attribute, immutable.

    Parameters
    ----------
    what
        What the classes are, for the error message ("activation", "scheme").
    classes
        The classes; each has a ``name``.
    """

    def __init__(self, what: str, classes: Iterable[type]):
        self._what = what
        self._classes = {cls.name: cls for cls in classes}

    def __getitem__(self, name: str) -> type:
        if name not in self:
            raise OptionError(f"unknown {self._what} {name!r}; choose from "
                              f"{sorted(self._classes)}.")
        return self._classes[name]

    def __contains__(self, name) -> bool:
        try:
            return name in self._classes
        except TypeError:  # an unhashable name is no name
            return False

    def get(self, name, default=None):
        return self._classes[name] if name in self else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def __repr__(self):
        return f"Registry({self._what!r}, {sorted(self._classes)})"
