"""Numerical analysis of a network as a discretised differential equation: the linear
stability of its layers (:mod:`pdeopt.analysis.stability`)."""

from pdeopt.analysis.stability import (LayerJacobians, LayerStability,  # noqa: F401
                                       StabilityReport, layer_jacobians, stability_report,
                                       step_bound)
