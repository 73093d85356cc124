"""PETSc options with a prefix, merged over immutable defaults, with unknown options reported;
the direct solver, the dense multi-right-hand-side solve and the convergence check shared by
pdeopt's linear solves."""

import re
from types import MappingProxyType

import numpy as np
import petsctools
from petsc4py import PETSc

from pdeopt.errors import ConvergenceError, OptionError, PdeoptError

__all__ = ["DIRECT_SOLVER_PARAMETERS", "configure", "inserted", "reason_name", "check_converged",
           "mat_solve"]

#: A sparse Cholesky factorisation by MUMPS, applied once (for SPD operators).
DIRECT_SOLVER_PARAMETERS = MappingProxyType({
    "ksp_type": "preonly", "pc_type": "cholesky", "pc_factor_mat_solver_type": "mumps"})


def configure(obj, defaults, solver_parameters, options_prefix):
    """Attach ``defaults`` updated by ``solver_parameters`` to a PETSc object and set it up.

    Command-line options under ``options_prefix`` override both. Any key of
    ``solver_parameters`` or command-line option under the prefix that PETSc did not read while
    setting the object up (but views, which PETSc reads at a solve), and an unknown
    PETSc type (``ksp_type``, ``pc_type``, ``tao_type``, ``mat_type``, ...), raise
    :class:`~pdeopt.errors.OptionError` naming it (with the valid types).
    """
    params = dict(defaults)
    params.update(solver_parameters or {})
    petsctools.attach_options(obj, parameters=params, options_prefix=options_prefix)
    obj.setOptionsPrefix(options_prefix)
    prefix = options_prefix
    with petsctools.inserted_options(obj):
        try:
            obj.setFromOptions()
            obj.setUp()
        except PETSc.Error as e:
            if e.ierr == _PETSC_ERR_UNKNOWN_TYPE:
                raise _unknown_type(params, prefix) from None
            if isinstance(e.__cause__, PdeoptError):  # raised in a Python PC's set-up
                raise e.__cause__ from None
            raise
        unused = sorted(k for k in (solver_parameters or {})
                        if not PETSc.Options().used(prefix + k))
        stray = sorted(name for name in PETSc.Options().getAll()
                       if name.startswith(prefix) and name[len(prefix):] not in params
                       and not PETSc.Options().used(name)
                       and not _READ_LATER.match(name[len(prefix):]))
    if stray:
        raise OptionError(f"PETSc did not recognise the command-line options "
                          f"{['-' + name for name in stray]} under the prefix '{prefix}' for "
                          f"this {type(obj).__name__}; check the spelling against -help output "
                          f"(option prefixes of pdeopt objects must not extend one another).")
    if unused:
        raise OptionError(f"PETSc did not recognise the options {unused} under the prefix "
                          f"'{prefix}' for this {type(obj).__name__}; check the spelling "
                          f"against -help output.")
    return obj


# Options PETSc reads after set-up (at or after a solve): not reported as unknown.
_READ_LATER = re.compile(r"(.*_)?view(_.*)?$|.*_test_.*")
_PETSC_ERR_UNKNOWN_TYPE = 86
_TYPES = {"ksp_type": PETSc.KSP.Type, "pc_type": PETSc.PC.Type, "tao_type": PETSc.TAO.Type,
          "mat_type": PETSc.Mat.Type, "pc_factor_mat_solver_type": PETSc.Mat.SolverType}


def _unknown_type(params, prefix) -> OptionError:
    """The :class:`OptionError` of PETSc's "Unknown type": which option, and the valid types
    (the options database is the one inserted for the object)."""
    options = PETSc.Options()
    for key, kind in _TYPES.items():
        if not options.hasName(prefix + key):
            continue
        value = options.getString(prefix + key)
        valid = sorted({v for k, v in vars(kind).items() if not k.startswith("_")
                        and isinstance(v, str)})
        if value not in valid:
            return OptionError(f"unknown {key} {value!r} under the prefix '{prefix}'; valid "
                               f"types: {', '.join(valid)}.")
    return OptionError(f"PETSc does not know a type among the options under '{prefix}' "
                       f"({params}); check the spelling against -help output.")


def inserted(obj):
    """Context manager: the object's options in PETSc's database (for solve-time queries)."""
    return petsctools.inserted_options(obj)


def reason_name(reasons, value: int) -> str:
    """The name of a PETSc converged-reason value.

    E.g. ``reason_name(PETSc.KSP.ConvergedReason, -3)`` is ``"DIVERGED_MAX_IT"``.
    """
    names = {v: k for k, v in vars(reasons).items() if isinstance(v, int)}
    return names.get(value, str(value))


def check_converged(ksp: PETSc.KSP, what: str, remedy: str) -> None:
    """Raise :class:`~pdeopt.errors.ConvergenceError` if the last solve of ``ksp`` diverged.

    The message reads "``what`` diverged with PETSc reason <name> after <n> iterations;
    ``remedy``".
    """
    reason = ksp.getConvergedReason()
    if reason < 0:
        raise ConvergenceError(
            f"{what} diverged with PETSc reason {reason_name(PETSc.KSP.ConvergedReason, reason)} "
            f"after {ksp.getIterationNumber()} iterations; {remedy}")


def mat_solve(ksp: PETSc.KSP, B: np.ndarray) -> np.ndarray:
    r""":math:`X = A^{-1}B` for an owned block ``B`` ``(n_owned, ...)`` of right-hand sides: one
    ``KSPMatSolve`` on dense matrices wrapping ``B`` and ``X`` (columns: the trailing axes).

    Returns ``X`` with the shape of ``B``. The dense matrices are destroyed on every path; the
    caller checks convergence (:func:`check_converged`).
    """
    shape = B.shape
    n, p = shape[0], int(np.prod(shape[1:]))
    B = np.asfortranarray(B.reshape(n, p))
    X = np.empty_like(B, order="F")
    sizes = ((n, PETSc.DETERMINE), (PETSc.DECIDE, p))
    comm = ksp.getComm()
    Bm = PETSc.Mat().createDense(sizes, array=B.ravel(order="F"), comm=comm)
    try:
        Xm = PETSc.Mat().createDense(sizes, array=X.ravel(order="F"), comm=comm)
        try:
            with inserted(ksp):
                ksp.matSolve(Bm, Xm)
        finally:
            Xm.destroy()
    finally:
        Bm.destroy()
    return np.ascontiguousarray(X).reshape(shape)
