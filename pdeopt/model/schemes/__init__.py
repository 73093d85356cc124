"""Time-stepping schemes: one network layer is one time step."""

from pdeopt.model.schemes.scheme import Scheme, EulerScheme  # noqa: F401
from pdeopt.model.schemes.forward_euler import ForwardEulerScheme  # noqa: F401
from pdeopt.model.schemes.parabolic import ParabolicScheme  # noqa: F401
from pdeopt.model.schemes.leapfrog import LeapfrogScheme  # noqa: F401
from pdeopt.model.schemes.imex import IMEXScheme  # noqa: F401
from pdeopt.model.schemes.verlet import VerletScheme  # noqa: F401
from pdeopt.model.schemes.delay import DelayScheme  # noqa: F401
from pdeopt.model.registry import Registry

#: The schemes built from operators, an activation and a step, by :attr:`Scheme.name`; an
#: unknown name is an OptionError listing the known ones. (A :class:`DelayScheme` is built
#: from a delay forcing and a delay.)
SCHEMES = Registry("scheme", (ForwardEulerScheme, ParabolicScheme, LeapfrogScheme, IMEXScheme,
                              VerletScheme))
