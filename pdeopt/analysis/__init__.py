"""Numerical analysis of a network as a discretised differential equation: the linear
stability of its layers (:mod:`pdeopt.analysis.stability`) and their consistency with the
continuous-time limit (:mod:`pdeopt.analysis.consistency`)."""

from pdeopt.analysis.consistency import (ConsistencyStudy, ControlPath,  # noqa: F401
                                         consistency_study, independent_path, smooth_path)
from pdeopt.analysis.stability import (LayerJacobians, LayerStability,  # noqa: F401
                                       StabilityReport, layer_jacobians, stability_column,
                                       stability_report, step_bound)
