"""Why a solver stopped: one vocabulary for the trust region and TAO, each reason with its
remedy (diffrax's ``RESULTS``, PETSc's converged reasons)."""

import enum

from petsc4py import PETSc

__all__ = ["TerminationReason"]


class TerminationReason(enum.Enum):
    """Why a pdeopt solver stopped; :attr:`converged` and :attr:`message` describe it.

    The names are PETSc TAO's (``CONVERGED_MINF`` is called ``CONVERGED_FMIN``, after the
    option ``fmin``), so that a TAO solve and a trust-region solve report alike.
    """

    CONVERGED_GATOL = "the gradient norm fell below gatol"
    CONVERGED_GRTOL = "the gradient norm fell below grtol times its initial value"
    CONVERGED_GTTOL = "the gradient norm fell below gttol times its initial value (TAO)"
    CONVERGED_SECOND_ORDER = ("the gradient norm fell below gatol or grtol and the minimum "
                              "eigenvalue oracle certified lambda_min(H) >= -epsilon")
    CONVERGED_FMIN = "the objective fell to fmin or below"
    CONVERGED_STEPTOL = "the step fell below steptol (TAO)"
    CONVERGED_USER = "a user's convergence test stopped the solve (TAO)"
    DIVERGED_MAXITS = "the iteration limit max_it was reached"
    DIVERGED_MAXFCN = "the objective evaluation limit was reached (TAO's tao_max_funcs)"
    DIVERGED_MAXTIME = "the wall-time limit max_seconds was reached"
    DIVERGED_MAXWORK = "the work budget max_work was reached"
    DIVERGED_TR_REDUCTION = ("the trust region shrank below its minimum radius: the model does "
                             "not predict the objective (check the gradient with taylor_check)")
    DIVERGED_LS_FAILURE = ("the line search failed (TAO): check the gradient with "
                           "taylor_check, or reduce the scale of the initial controls")
    DIVERGED_LINEAR_SOLVE = "the trust-region subproblem solve failed (PETSc's reason follows)"
    DIVERGED_NAN = ("the objective or the gradient is not finite (TAO): reduce the time step "
                    "or the scale of the initial controls")
    DIVERGED_USER = "a user's test stopped the solve (TAO)"

    @property
    def converged(self) -> bool:
        """Whether the reason is a convergence test (a positive PETSc reason)."""
        return self.name.startswith("CONVERGED")

    @property
    def message(self) -> str:
        """What happened and, for a failure, what to try."""
        return self.value

    @classmethod
    def from_tao(cls, code: int) -> "TerminationReason":
        """The reason of a TAO converged-reason value (``TAO.getConvergedReason()``)."""
        names = {v: k for k, v in vars(PETSc.TAO.ConvergedReason).items()
                 if isinstance(v, int)}
        name = names.get(code)
        if name == "CONVERGED_MINF":
            return cls.CONVERGED_FMIN
        if name not in cls.__members__:
            raise ValueError(f"TAO converged reason {code} ({name}) has no pdeopt name.")
        return cls[name]
