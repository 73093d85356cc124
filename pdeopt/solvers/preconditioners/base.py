"""The base of the trust-region preconditioners: petsctools' ``PCBase`` with the trust
region's hooks."""

import numpy as np
import petsctools

__all__ = ["TrustRegionPC"]


class TrustRegionPC(petsctools.PCBase):
    r"""A PETSc Python PC for the trust-region subproblem; it also defines the trust-region
    norm :math:`\|p\|_P = (p^T P p)^{1/2}`.

    As petsctools' ``PCBase``: :meth:`initialize` at the first set-up, :meth:`update` at later
    ones, :meth:`apply`, and a ``prefix`` nested under the KSP's, so that its options are
    ``-<KSP prefix><prefix>...`` (``-pdeopt_tr_pc_lmvm_mat_lmvm_hist_size 5``) and two solvers
    with different prefixes keep their PCs' options apart. The trust region adds three hooks,
    no-ops here: :meth:`accept` at every accepted iterate, and :meth:`state` /
    :meth:`restore` for checkpoints.
    """

    def update(self, pc) -> None:
        """Re-set-up: nothing, as the operators do not change between solves."""

    def accept(self, theta: np.ndarray, gradient: np.ndarray, Jhat) -> None:
        """``theta`` (with its ``gradient``) is the new iterate of the minimisation of
        ``Jhat``."""

    def settings(self) -> dict:
        """The settings that change what this PC applies (for checkpoints' fingerprints)."""
        return {}

    def fingerprint(self) -> dict:
        """What a checkpoint records of this PC: its kind and :meth:`settings`."""
        return {"type": type(self).__name__, **self.settings()}

    def state(self) -> dict:
        """Arrays (name → ndarray) that restore this PC after a resume."""
        return {}

    def restore(self, arrays: dict) -> None:
        """Restore from a checkpoint's arrays (:meth:`state`'s, among others)."""
