"""Numerical analysis of a network as a discretised differential equation: the linear
stability of its layers (:mod:`pdeopt.analysis.stability`), their consistency with the
continuous-time limit (:mod:`pdeopt.analysis.consistency`), and learned
Lyapunov-Krasovskii functionals that certify the stability of delay layers
(:mod:`pdeopt.analysis.lyapunov_krasovskii`)."""

from pdeopt.analysis.consistency import (ConsistencyStudy, ControlPath,  # noqa: F401
                                         consistency_study, independent_path, smooth_path)
from pdeopt.analysis.lyapunov_krasovskii import (KrasovskiiCertificate,  # noqa: F401
                                                 LinearDelayEquation,
                                                 LyapunovKrasovskiiFunctional,
                                                 LyapunovKrasovskiiLoss, certify,
                                                 cost_to_go, history_covariance)
from pdeopt.analysis.stability import (LayerJacobians, LayerStability,  # noqa: F401
                                       StabilityReport, layer_jacobians, stability_column,
                                       stability_report, step_bound)
