"""Reduced functionals on arrays (serial, ensemble, projected), the regulariser, their counts
and their checks; the controls, Blocks and losses on the pyadjoint tape."""

from pdeopt.problem.array_functional import ArrayFunctional  # noqa: F401
from pdeopt.problem.control_array import ControlArray  # noqa: F401
from pdeopt.problem.counts import Counts  # noqa: F401
from pdeopt.problem.functional import (network_output, readout_loss,  # noqa: F401
                                       regularization, training_loss)
from pdeopt.problem.reduced_functional import ReducedFunctional  # noqa: F401
from pdeopt.problem.regularizer import Regularizer  # noqa: F401
from pdeopt.problem.state_array import StateArray  # noqa: F401
from pdeopt.problem.verification import dot_test, taylor_check  # noqa: F401
from pdeopt.problem.variable_projection import ProjectedReducedFunctional  # noqa: F401
from pdeopt.problem.ensemble import EnsembleReducedFunctional, member_slice  # noqa: F401
from pdeopt.problem.sum_functional import SumFunctional  # noqa: F401
