r"""The search space of a blackbox calibration: typed variables, constraints, configurations.

A calibration minimises :math:`f(x)` over :math:`x \in X = \prod_i X_i`, each :math:`X_i` an
integer range, a real interval (searched on a log scale where asked) or a finite set of
categories, subject to :math:`c_j(x) \le 0` (Audet & Hare 2017, §1). A point of :math:`X` is a
:class:`Configuration`: frozen, validated, with a canonical key that identifies it in the
evaluation database.

Each backend sees the space through one encoding:

- Py-BOBYQA: the real variables only, each mapped to :math:`[0, 1]`
  (:meth:`SearchSpace.to_unit` / :meth:`SearchSpace.from_unit`; linear, or linear in
  :math:`\log_{10}` for ``log=True``), the others fixed.
- NOMAD 4: integer variables as ``I``, reals as ``R`` (in :math:`\log_{10}` where
  ``log=True``), and each categorical as an ``I`` index into its declared ``choices``
  (:meth:`SearchSpace.to_nomad`). NOMAD has no categorical type; an index is honest only for an
  order in which neighbouring categories are alike, so declare the choices in such an order
  (for example schemes by order of accuracy, resolutions ascending).
- Optuna: ``trial.suggest_int`` / ``suggest_float(log=...)`` / ``suggest_categorical``
  (:meth:`SearchSpace.suggest`).
"""

import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from pdeopt.errors import OptionError

__all__ = ["Integer", "Real", "Categorical", "Constraint", "SearchSpace", "Configuration"]


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Integer:
    """An integer variable :math:`x \\in \\{low, \\dots, high\\}` (depth, channels)."""

    name: str
    low: int
    high: int

    def __post_init__(self):
        if not (_is_int(self.low) and _is_int(self.high)) or self.low > self.high:
            raise OptionError(f"Integer {self.name!r}: low={self.low!r} and high={self.high!r} "
                              f"must be integers with low <= high")

    @property
    def range(self) -> str:
        return f"integers in [{self.low}, {self.high}]"

    def validate(self, value) -> int:
        """``value`` as an ``int``; :class:`OptionError` if not an integer in range."""
        if not _is_int(value) or not self.low <= value <= self.high:
            raise OptionError(f"variable {self.name!r} = {value!r} is not in its range: "
                              f"{self.range}")
        return int(value)


@dataclass(frozen=True)
class Real:
    """A real variable :math:`x \\in [low, high]`, searched in :math:`\\log_{10} x` if ``log``
    (:math:`\\alpha`, :math:`\\beta`, the initial radius)."""

    name: str
    low: float
    high: float
    log: bool = False

    def __post_init__(self):
        if not (_is_real(self.low) and _is_real(self.high)) or not self.low < self.high \
                or not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise OptionError(f"Real {self.name!r}: low={self.low!r} and high={self.high!r} "
                              f"must be finite reals with low < high")
        if self.log and self.low <= 0:
            raise OptionError(f"Real {self.name!r}: log=True needs low > 0, not {self.low!r}")

    @property
    def range(self) -> str:
        return f"reals in [{self.low!r}, {self.high!r}]" + (" (log scale)" if self.log else "")

    def validate(self, value) -> float:
        """``value`` as a ``float``; :class:`OptionError` if not a real in range."""
        if not _is_real(value) or not self.low <= value <= self.high:
            raise OptionError(f"variable {self.name!r} = {value!r} is not in its range: "
                              f"{self.range}")
        return float(value)

    def to_search(self, value: float) -> float:
        """The coordinate the backends search in: ``log10(value)`` or ``value``."""
        return math.log10(value) if self.log else float(value)

    def from_search(self, s: float) -> float:
        """The inverse of :meth:`to_search`, clipped to ``[low, high]`` against round-off."""
        value = 10.0 ** s if self.log else float(s)
        return min(max(value, self.low), self.high)

    @property
    def search_bounds(self) -> tuple[float, float]:
        return self.to_search(self.low), self.to_search(self.high)


@dataclass(frozen=True)
class Categorical:
    """A categorical variable :math:`x \\in \\{c_0, \\dots, c_{k-1}\\}` (scheme,
    preconditioner, mesh resolution); ``choices`` are JSON scalars (str, int, float, bool)."""

    name: str
    choices: tuple

    def __post_init__(self):
        choices = tuple(self.choices)
        object.__setattr__(self, "choices", choices)
        if not choices or len(set(map(repr, choices))) != len(choices) or not all(
                isinstance(c, (str, int, float, bool)) for c in choices):
            raise OptionError(f"Categorical {self.name!r}: choices {choices!r} must be distinct "
                              f"JSON scalars (str, int, float or bool), at least one")

    @property
    def range(self) -> str:
        return f"one of {list(self.choices)!r}"

    def index(self, value) -> int:
        """The position of ``value`` in ``choices`` (type and value equal: ``1 != True``)."""
        for i, c in enumerate(self.choices):
            if type(c) is type(value) and c == value:
                return i
        raise OptionError(f"variable {self.name!r} = {value!r} is not in its range: "
                          f"{self.range}")

    def validate(self, value):
        """``value`` itself; :class:`OptionError` unless it is one of the ``choices``."""
        if isinstance(value, np.generic):
            value = value.item()
        return self.choices[self.index(value)]


@dataclass(frozen=True)
class Constraint:
    """A constraint :math:`c(x) \\le 0` known before the blackbox runs (a step bound
    ``h - step_bound(...)``); ``function(config) -> float``, feasible iff the value is ≤ 0."""

    name: str
    function: Callable[["Configuration"], float]

    def __call__(self, config: "Configuration") -> float:
        return float(self.function(config))


class Configuration(Mapping):
    """A point of a :class:`SearchSpace`: an immutable mapping ``name -> value``, validated.

    Parameters
    ----------
    space
        The space the point belongs to.
    values
        One value per variable of ``space``; an unknown or missing name, a wrong type or a value
        out of range raises :class:`~pdeopt.errors.OptionError` naming the variable, the value
        and the range.
    """

    __slots__ = ("_space", "_values", "_key")

    def __init__(self, space: "SearchSpace", values: Mapping[str, Any]):
        if isinstance(values, Configuration):
            values = dict(values)
        unknown = sorted(set(values) - set(space.names))
        if unknown:
            raise OptionError(f"unknown variable(s) {unknown} in a configuration; the space has "
                              f"{list(space.names)}")
        missing = [n for n in space.names if n not in values]
        if missing:
            raise OptionError(f"configuration lacks variable(s) {missing}; ranges: "
                              + "; ".join(f"{n}: {space[n].range}" for n in missing))
        self._space = space
        self._values = {v.name: v.validate(values[v.name]) for v in space.variables}
        self._key = json.dumps(self._values, sort_keys=True)

    @property
    def space(self) -> "SearchSpace":
        return self._space

    @property
    def key(self) -> str:
        """The canonical identity: JSON with sorted keys (floats written round-trip exactly)."""
        return self._key

    def replace(self, **changes) -> "Configuration":
        """A copy with ``changes`` applied, validated."""
        return Configuration(self._space, {**self._values, **changes})

    def __getitem__(self, name):
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __eq__(self, other):
        if isinstance(other, Configuration):
            return self._key == other._key
        return NotImplemented

    def __hash__(self):
        return hash(self._key)

    def __repr__(self):
        return f"Configuration({self._key})"


class SearchSpace:
    """The set :math:`X = \\prod_i X_i` of configurations, with a priori constraints
    :math:`c_j(x) \\le 0` and a work limit.

    Parameters
    ----------
    variables
        :class:`Integer`, :class:`Real` and :class:`Categorical` variables, distinct names.
    constraints
        :class:`Constraint` objects, or plain callables (named by their ``__name__``),
        ``config -> float``, feasible iff ≤ 0. They are evaluated before the blackbox, so a
        backend that can skip infeasible points never trains one, and on every rank of the
        calibration's communicator, so a collective one (``h - step_bound(network, theta,
        x)`` at the initial controls) is allowed.
    work_limit
        Work units (forward + adjoint solve equivalents) an evaluation may spend, or ``None``.
        A blackbox reads it as its training budget; an evaluation that reports more work is
        recorded infeasible, with the constraint ``work_limit`` = work − limit (a constraint
        known only after the run).
    """

    def __init__(self, variables, constraints=(), work_limit: float | None = None):
        self.variables = tuple(variables)
        self.names = tuple(v.name for v in self.variables)
        if not self.variables or not all(isinstance(v, (Integer, Real, Categorical))
                                         for v in self.variables):
            raise OptionError("a SearchSpace needs Integer, Real or Categorical variables")
        if len(set(self.names)) != len(self.names):
            raise OptionError(f"variable names must be distinct: {list(self.names)}")
        self.constraints = tuple(
            c if isinstance(c, Constraint) else Constraint(getattr(c, "__name__", repr(c)), c)
            for c in constraints)
        cnames = [c.name for c in self.constraints]
        if len(set(cnames)) != len(cnames) or "work_limit" in cnames:
            raise OptionError(f"constraint names must be distinct and not 'work_limit': "
                              f"{cnames}")
        if work_limit is not None and not (_is_real(work_limit) and work_limit > 0):
            raise OptionError(f"work_limit = {work_limit!r} must be a positive number or None")
        self.work_limit = work_limit
        self._by_name = {v.name: v for v in self.variables}

    def __getitem__(self, name):
        return self._by_name[name]

    def __repr__(self):
        return (f"SearchSpace({list(self.variables)!r}, constraints="
                f"{[c.name for c in self.constraints]}, work_limit={self.work_limit!r})")

    def configuration(self, values: Mapping[str, Any] | None = None, **kwargs) -> Configuration:
        """The validated :class:`Configuration` of ``values`` (or keyword arguments)."""
        return Configuration(self, {**(values or {}), **kwargs})

    def from_key(self, key: str) -> Configuration:
        """The configuration whose :attr:`Configuration.key` is ``key``."""
        return Configuration(self, json.loads(key))

    def default(self) -> Configuration:
        """The centre of the space: midpoints (in the search scale, integers rounded down) and
        the first category; a starting point when none is given."""
        values = {}
        for v in self.variables:
            if isinstance(v, Integer):
                values[v.name] = (v.low + v.high) // 2
            elif isinstance(v, Real):
                values[v.name] = v.from_search(0.5 * sum(v.search_bounds))
            else:
                values[v.name] = v.choices[0]
        return Configuration(self, values)

    def constraint_values(self, config: Configuration) -> dict[str, float]:
        """``{name: c(config)}`` for the a priori constraints."""
        return {c.name: c(config) for c in self.constraints}

    # Random sampling (RandomSearch).
    def sample(self, rng: np.random.Generator) -> Configuration:
        """A configuration drawn uniformly (reals uniform in the search scale)."""
        values = {}
        for v in self.variables:
            if isinstance(v, Integer):
                values[v.name] = int(rng.integers(v.low, v.high + 1))
            elif isinstance(v, Real):
                values[v.name] = v.from_search(rng.uniform(*v.search_bounds))
            else:
                values[v.name] = v.choices[int(rng.integers(len(v.choices)))]
        return Configuration(self, values)

    # Py-BOBYQA: the real subspace in the unit box.
    @property
    def reals(self) -> tuple[Real, ...]:
        return tuple(v for v in self.variables if isinstance(v, Real))

    def to_unit(self, config: Configuration) -> np.ndarray:
        """The real variables of ``config`` as a vector in :math:`[0, 1]^{n_R}`."""
        return np.array([(v.to_search(config[v.name]) - v.search_bounds[0])
                         / (v.search_bounds[1] - v.search_bounds[0]) for v in self.reals])

    def from_unit(self, u, base: Configuration) -> Configuration:
        """``base`` with its real variables replaced by the point ``u`` of the unit box."""
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        return base.replace(**{v.name: v.from_search(v.search_bounds[0] + ui * (
            v.search_bounds[1] - v.search_bounds[0])) for v, ui in zip(self.reals, u)})

    # NOMAD 4: integer and real coordinates.
    def nomad_input_type(self) -> str:
        """NOMAD's ``BB_INPUT_TYPE``: ``I`` for integers and categorical indices, ``R``."""
        return "(" + " ".join("R" if isinstance(v, Real) else "I" for v in self.variables) + ")"

    def nomad_bounds(self) -> tuple[list[float], list[float]]:
        """NOMAD's lower and upper bounds, in the coordinates of :meth:`to_nomad`."""
        lb, ub = [], []
        for v in self.variables:
            lo, hi = (v.search_bounds if isinstance(v, Real) else (v.low, v.high)
                      if isinstance(v, Integer) else (0, len(v.choices) - 1))
            lb.append(float(lo))
            ub.append(float(hi))
        return lb, ub

    def to_nomad(self, config: Configuration) -> list[float]:
        """``config`` as NOMAD coordinates (a categorical as its index in ``choices``)."""
        return [float(v.to_search(config[v.name]) if isinstance(v, Real)
                      else config[v.name] if isinstance(v, Integer)
                      else v.index(config[v.name])) for v in self.variables]

    def from_nomad(self, x) -> Configuration:
        """The inverse of :meth:`to_nomad` (NOMAD passes integers as floats: rounded)."""
        values = {}
        for v, xi in zip(self.variables, x):
            if isinstance(v, Real):
                values[v.name] = v.from_search(xi)
            elif isinstance(v, Integer):
                values[v.name] = int(round(xi))
            else:
                values[v.name] = v.choices[int(round(xi))]
        return Configuration(self, values)

    # Optuna.
    def suggest(self, trial) -> Configuration:
        """The configuration an Optuna ``trial`` suggests (``suggest_int``, ``suggest_float``
        with ``log``, ``suggest_categorical``)."""
        values = {}
        for v in self.variables:
            if isinstance(v, Integer):
                values[v.name] = trial.suggest_int(v.name, v.low, v.high)
            elif isinstance(v, Real):
                values[v.name] = trial.suggest_float(v.name, v.low, v.high, log=v.log)
            else:
                values[v.name] = trial.suggest_categorical(v.name, v.choices)
        return Configuration(self, values)
