"""PETSc Python PCs for the trust-region subproblem, one per file (Firedrake's
``preconditioners/``), on :class:`~pdeopt.solvers.preconditioners.base.TrustRegionPC`. Each
also defines the trust-region norm :math:`\\|p\\|_P`."""

from pdeopt.solvers.preconditioners.base import TrustRegionPC  # noqa: F401
from pdeopt.solvers.preconditioners.krasovskii import LyapunovKrasovskiiPC  # noqa: F401
from pdeopt.solvers.preconditioners.lmvm import LMVMPC  # noqa: F401
from pdeopt.solvers.preconditioners.low_rank import LowRankPC  # noqa: F401
from pdeopt.solvers.preconditioners.regularizer import RegularizerPC  # noqa: F401
