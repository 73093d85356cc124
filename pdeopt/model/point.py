"""A domain with no space: one point, the state's components as its channels."""

import firedrake as fd
from mpi4py import MPI

from pdeopt.data.validation import shown
from pdeopt.errors import InputError

__all__ = ["PointDomain"]


class PointDomain:
    r"""One point, for ordinary differential and delay equations on the network's kernels.

    The state of an ODE :math:`x' = F(x, x(t-\tau))` in :math:`\mathbb{R}^C` is a block
    ``(1, batch, C)``: one point, the samples, the components as channels. The mesh is one
    interval cell with its :math:`DG_0` space, so the mass is 1 and the stencil basis is the
    identity alone: :func:`~pdeopt.model.operators.assemble_operators` gives ``("I",)``, and a
    layer's mix :math:`L(u;\Theta) = u\Theta^T` is a dense layer.

    Parameters
    ----------
    comm
        A communicator of one rank: a point is not partitioned; split the samples over ranks
        with an :class:`~pdeopt.problem.ensemble.EnsembleReducedFunctional`.
    """

    def __init__(self, *, comm: MPI.Comm = MPI.COMM_WORLD):
        if not isinstance(comm, MPI.Comm):
            raise InputError(f"PointDomain: comm={shown(comm)} must be an mpi4py communicator; "
                             f"pass e.g. mpi4py.MPI.COMM_SELF.")
        if comm.size != 1:
            raise InputError(f"PointDomain: a point cannot be partitioned over {comm.size} ranks; "
                             f"pass comm=MPI.COMM_SELF (or an Ensemble's spatial comm of one "
                             f"rank) and split the samples with an ensemble.")
        self.comm = comm
        self.mesh = fd.UnitIntervalMesh(1, comm=comm)
        self.V = fd.FunctionSpace(self.mesh, "DG", 0)
        self.n_owned = 1

    def __repr__(self):
        return "PointDomain()"
