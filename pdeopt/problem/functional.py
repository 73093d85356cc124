"""Annotated evaluation of the training loss: the network, its readout and the regulariser.

Each function computes its value and, when pyadjoint is annotating, records one Block on the
working tape (the pattern of Firedrake's overloaded operations).
"""

from pyadjoint import AdjFloat
from pyadjoint.tape import annotate_tape, get_working_tape, stop_annotating

from pdeopt.problem.blocks import NetworkBlock, ReadoutBlock, RegularizerBlock
from pdeopt.problem.state_array import StateArray

__all__ = ["network_output", "readout_loss", "regularization", "training_loss"]


def network_output(network, theta, x) -> StateArray:
    r"""The network output :math:`u_N(\theta; x)` (annotated)."""
    annotate = annotate_tape()
    with stop_annotating():
        uN, trajectory = network.forward(theta.array[:network.layout.size], x, store=annotate)
    out = StateArray(uN)
    if annotate:
        block = NetworkBlock(network, x, theta, trajectory)
        get_working_tape().add_block(block)
        block.add_output(out.create_block_variable())
    return out


def readout_loss(readout, layout, uN, theta, target) -> AdjFloat:
    r"""The loss :math:`\ell(Q u_N, y)` of ``readout`` (annotated)."""
    annotate = annotate_tape()
    with stop_annotating():
        J, record = readout.value(uN.array, layout.views(theta.array), target)
    out = AdjFloat(J)
    if annotate:
        block = ReadoutBlock(readout, layout, uN, theta, target, record)
        get_working_tape().add_block(block)
        block.add_output(out.create_block_variable())
    return out


def regularization(regularizer, theta) -> AdjFloat:
    r"""The regulariser :math:`R(\theta)` (annotated)."""
    annotate = annotate_tape()
    out = AdjFloat(regularizer.value(theta.array))
    if annotate:
        block = RegularizerBlock(regularizer, theta)
        get_working_tape().add_block(block)
        block.add_output(out.create_block_variable())
    return out


def training_loss(model, theta, x, target, regularizer=None) -> AdjFloat:
    r""":math:`\hat J(\theta) = \ell(Q u_N(\theta; x), y) + R(\theta)` (annotated)."""
    uN = network_output(model.network, theta, x)
    J = readout_loss(model.readout, model.layout, uN, theta, target)
    if regularizer is not None:
        J = J + regularization(regularizer, theta)
    return J
