"""Argument checks for constructors: a value of the right kind in its range, or a typed error
that names the owner, the argument, the value, the valid range and the remedy (torchdiffeq's
``_check_inputs``)."""

import numbers

import numpy as np

from pdeopt.errors import InputError, OptionError

__all__ = ["real", "integer", "instance"]


def _fail(error, owner, name, value, need, remedy):
    tail = f"; {remedy}" if remedy else ""
    return error(f"{owner}: {name}={value!r} must be {need}{tail}.")


def real(owner: str, name: str, value, *, low=None, high=None, low_open=False, high_open=False,
         allow_inf=False, remedy: str = "", error=InputError) -> float:
    """``value`` as a float in ``[low, high]`` (open ends as asked), finite unless
    ``allow_inf``; bools, strings, complex numbers and NaN are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(error, owner, name, value, "a real number", remedy)
    value = float(value)
    interval = (f"{'(' if low_open or low is None else '['}{'-inf' if low is None else low}, "
                f"{'inf' if high is None else high}{')' if high_open or high is None else ']'}")
    if np.isnan(value) or (np.isinf(value) and not allow_inf):
        raise _fail(error, owner, name, value, f"finite, in {interval}", remedy)
    if low is not None and (value < low or (low_open and value == low)) \
            or high is not None and (value > high or (high_open and value == high)):
        raise _fail(error, owner, name, value, f"in {interval}", remedy)
    return value


def integer(owner: str, name: str, value, *, low=None, remedy: str = "",
            error=InputError) -> int:
    """``value`` as an int ``>= low``; bools, floats and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _fail(error, owner, name, value, "an integer", remedy)
    if low is not None and value < low:
        raise _fail(error, owner, name, value, f"an integer >= {low}", remedy)
    return int(value)


def instance(owner: str, name: str, value, types, remedy: str = "", error=OptionError):
    """``value`` if it is one of ``types`` (a class or a tuple), else ``error``."""
    if not isinstance(value, types):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise _fail(error, owner, name, value, f"a {names}", remedy)
    return value
