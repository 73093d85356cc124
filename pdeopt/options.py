"""PETSc options with a prefix, merged over immutable defaults, with unknown options reported."""

import petsctools
from petsc4py import PETSc

from pdeopt.errors import OptionError

__all__ = ["configure", "inserted", "reason_name"]


def configure(obj, defaults, solver_parameters, options_prefix):
    """Attach ``defaults`` updated by ``solver_parameters`` to a PETSc object and set it up.

    Command-line options under ``options_prefix`` override both. Any key of
    ``solver_parameters`` that PETSc did not read while setting the object up raises
    :class:`~pdeopt.errors.OptionError` naming it.
    """
    params = dict(defaults)
    params.update(solver_parameters or {})
    petsctools.attach_options(obj, parameters=params, options_prefix=options_prefix)
    obj.setOptionsPrefix(options_prefix)
    prefix = options_prefix
    with petsctools.inserted_options(obj):
        obj.setFromOptions()
        obj.setUp()
        unused = sorted(k for k in (solver_parameters or {})
                        if not PETSc.Options().used(prefix + k))
    if unused:
        raise OptionError(f"PETSc did not recognise the options {unused} under the prefix "
                          f"'{prefix}' for this {type(obj).__name__}; check the spelling "
                          f"against -help output.")
    return obj


def inserted(obj):
    """Context manager: the object's options in PETSc's database (for solve-time queries)."""
    return petsctools.inserted_options(obj)


def reason_name(reasons, value: int) -> str:
    """The name of a PETSc converged-reason value, e.g. ``reason_name(PETSc.KSP.ConvergedReason, -3)``."""
    names = {v: k for k, v in vars(reasons).items() if isinstance(v, int)}
    return names.get(value, str(value))
