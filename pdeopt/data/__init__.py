"""Datasets as fields on meshes, and input checks."""

from pdeopt.data.digits import Dataset, load_digits, resample_digits  # noqa: F401
from pdeopt.data.validation import check_batch, check_finite  # noqa: F401
from pdeopt.data.diffusion_reaction import RegressionData, diffusion_reaction_data  # noqa: F401
from pdeopt.data.advection import (AdvectionData, advection_data, cfl_steps,  # noqa: F401
                                   courant_number, front_profile)
from pdeopt.data.delay import integrate_delay  # noqa: F401
