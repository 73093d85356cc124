"""Typed exceptions of pdeopt.

Every failure names its cause and a remedy, in the manner of Firedrake's
``ConvergenceError`` and torchdiffeq's input checks.
"""

__all__ = ["PdeoptError", "InputError", "OptionError", "ConvergenceError", "CheckpointError",
           "ControlDomainError"]


class PdeoptError(Exception):
    """Base class of all pdeopt errors."""


class InputError(PdeoptError, ValueError):
    """Data, shapes or arguments that cannot be used, detected before any work is done."""


class OptionError(PdeoptError, ValueError):
    """An option that pdeopt or PETSc does not know, or a value it cannot take."""


class ConvergenceError(PdeoptError, RuntimeError):
    """A PETSc solve that diverged; the message carries PETSc's reason."""


class CheckpointError(PdeoptError, RuntimeError):
    """A checkpoint that cannot be written, read, or resumed by this run: missing, truncated
    or garbled files, or a checkpoint of another problem; the message names the file or what
    differs, and the remedy."""


class ControlDomainError(PdeoptError, ValueError):
    r"""Controls outside the set on which the model is defined (a learned delay outside
    :math:`[0, \tau_\max]`): the objective has no value there, so an optimiser's trial point
    there is a rejected step; the message names the control, its range and the remedy."""
