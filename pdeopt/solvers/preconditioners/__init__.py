"""PETSc Python PCs for the trust-region subproblem, one per file (Firedrake's
``preconditioners/``). Each also defines the trust-region norm :math:`\\|p\\|_P`.

A PC context may define ``update(theta, gradient, Jhat)``, called at every accepted iterate,
and ``state()`` / ``restore(arrays)`` for checkpoints.
"""

from pdeopt.solvers.preconditioners.lmvm import LMVMPC  # noqa: F401
from pdeopt.solvers.preconditioners.low_rank import LowRankPC  # noqa: F401
from pdeopt.solvers.preconditioners.regularizer import RegularizerPC  # noqa: F401
