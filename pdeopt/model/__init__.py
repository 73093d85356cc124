"""Spaces, operators, layer schemes, networks and readouts."""

from pdeopt.model.activation import (ACTIVATIONS, Activation, SmoothReLU, Softplus,  # noqa: F401
                                     Tanh, activation_by_name)
from pdeopt.model.control import ControlLayout, LayerControl  # noqa: F401
from pdeopt.model.delay_forcing import (DelayForcing, DelayedPerceptron,  # noqa: F401
                                        HutchinsonLaw, HybridDelayLaw, LinearDelayLaw,
                                        MackeyGlassLaw)
from pdeopt.model.grid import PixelGrid  # noqa: F401
from pdeopt.model.point import PointDomain  # noqa: F401
from pdeopt.model.model import Model  # noqa: F401
from pdeopt.model.network import Network  # noqa: F401
from pdeopt.model.operators import (GRID_BASIS, GRID_SHIFTS, MESH_BASIS, OperatorSet,  # noqa: F401
                                    assemble_operators)
from pdeopt.model.readout import (FieldMisfit, LinearReadout, PooledClassifier,  # noqa: F401
                                  ProbeRegression, Readout)
from pdeopt.model.schemes import (SCHEMES, DelayScheme, ForwardEulerScheme,  # noqa: F401
                                  IMEXScheme, LeapfrogScheme, ParabolicScheme, Scheme,
                                  VerletScheme)
