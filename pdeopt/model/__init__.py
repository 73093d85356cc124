"""Spaces, operators, layer schemes, networks and readouts."""

from pdeopt.model.activation import Activation, SmoothReLU, Softplus, Tanh, activation  # noqa: F401
from pdeopt.model.control import ControlLayout, LayerControl  # noqa: F401
from pdeopt.model.grid import PixelGrid  # noqa: F401
from pdeopt.model.model import Model  # noqa: F401
from pdeopt.model.network import Network  # noqa: F401
from pdeopt.model.operators import (GRID_BASIS, GRID_SHIFTS, MESH_BASIS, OperatorSet,  # noqa: F401
                                     assemble_operators)
from pdeopt.model.readout import FieldMisfit, PooledClassifier, ProbeRegression  # noqa: F401
from pdeopt.model.schemes import (SCHEMES, ForwardEulerScheme, IMEXScheme,  # noqa: F401
                                  LeapfrogScheme, ParabolicScheme, Scheme)
