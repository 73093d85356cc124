"""Time-stepping schemes: one network layer is one time step."""

from pdeopt.model.schemes.scheme import Scheme, EulerScheme  # noqa: F401
from pdeopt.model.schemes.forward_euler import ForwardEulerScheme  # noqa: F401
from pdeopt.model.schemes.parabolic import ParabolicScheme  # noqa: F401
from pdeopt.model.schemes.leapfrog import LeapfrogScheme  # noqa: F401
from pdeopt.model.schemes.imex import IMEXScheme  # noqa: F401

SCHEMES = {cls.name: cls for cls in (ForwardEulerScheme, ParabolicScheme, LeapfrogScheme,
                                     IMEXScheme)}
