"""Hostile input to the model and data layers: each bad argument of a constructor, a data
loader or a prediction is a pdeopt error that names it; property-based cases never end in a raw
library error or a NaN; on two ranks, data that is bad on one rank fails on both."""

import math
import re

import firedrake as fd
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mpi4py import MPI
from petsc4py import PETSc

import pdeopt
from pdeopt import InputError, OptionError, PdeoptError
from pdeopt.data import check_batch
from pdeopt.model import ControlLayout
from problems import PROBES

SCHEME_CLASSES = tuple(pdeopt.SCHEMES.values())


class Parts:
    """A small classifier on the 8x8 grid, serial, built once per module."""

    def __init__(self, comm=MPI.COMM_SELF):
        self.grid = pdeopt.PixelGrid(8, comm=comm)
        self.ops = pdeopt.assemble_operators(self.grid)
        self.scheme = pdeopt.ParabolicScheme(self.ops, pdeopt.Tanh(), step=0.5)
        self.network = pdeopt.Network(self.scheme, channels=2, depth=2)
        self.classifier = pdeopt.PooledClassifier(self.grid, channels=2, classes=10)
        self.model = pdeopt.Model(self.network, self.classifier)
        self.theta = self.model.initial_controls(seed=0, readout_scale=1.0)
        self.x = np.random.default_rng(0).random((self.grid.n_owned, 3, 1))


@pytest.fixture(scope="module")
def parts():
    return Parts()


@pytest.fixture(scope="module")
def regression(parts):
    readout = pdeopt.ProbeRegression(parts.grid, 2, PROBES, len(PROBES))
    model = pdeopt.Model(parts.network, readout)
    return model, model.initial_controls(seed=0, readout_scale=1.0)


def _with_nan(a, index=(3, 1, 0)):
    a = np.array(a, dtype=float)
    a[index] = math.nan
    return a


# -- named cases: (build from the parts, error class, a pattern the message must hold) --------
BAD_STEPS = {
    "zero": 0.0, "negative": -0.1, "NaN": math.nan, "inf": math.inf, "-inf": -math.inf,
    "bool": True, "string": "0.1", "None": None, "complex": 0.1 + 0j,
}


@pytest.mark.parametrize("cls", SCHEME_CLASSES, ids=lambda c: c.name)
@pytest.mark.parametrize("case", BAD_STEPS)
def test_a_bad_step_is_named_by_every_scheme(parts, cls, case):
    step = BAD_STEPS[case]
    with pytest.raises(InputError, match=re.escape(f"{cls.__name__}: step={step!r}")) as info:
        cls(parts.ops, pdeopt.Tanh(), step=step)
    assert "h = T/N > 0" in str(info.value)  # the remedy


BAD_CONSTRUCTORS = {
    # the grid
    "grid nx 2": (lambda p: pdeopt.PixelGrid(2), InputError, "nx=2"),
    "grid nx 0": (lambda p: pdeopt.PixelGrid(0), InputError, "nx=0"),
    "grid nx negative": (lambda p: pdeopt.PixelGrid(-8), InputError, "nx=-8"),
    "grid nx a float": (lambda p: pdeopt.PixelGrid(8.0), InputError, "nx=8.0"),
    "grid nx a bool": (lambda p: pdeopt.PixelGrid(True), InputError, "nx=True"),
    "grid nx a string": (lambda p: pdeopt.PixelGrid("8"), InputError, "nx='8'"),
    "grid ny 1": (lambda p: pdeopt.PixelGrid(8, 1), InputError, "ny=1"),
    "grid comm None": (lambda p: pdeopt.PixelGrid(8, comm=None), InputError, "comm=None"),
    "grid comm of PETSc": (lambda p: pdeopt.PixelGrid(8, comm=PETSc.COMM_SELF), InputError,
                           "comm=.*mpi4py"),
    # the operators
    "basis empty": (lambda p: pdeopt.assemble_operators(p.grid, basis=()), InputError,
                    r"basis=\(\) is empty"),
    "basis a string": (lambda p: pdeopt.assemble_operators(p.grid, basis="dx"), InputError,
                       "basis='dx'"),
    "basis unknown name": (lambda p: pdeopt.assemble_operators(p.grid, basis=("I", "dz")),
                           OptionError, r"unknown operators \['dz'\] in basis; choose from"),
    "basis a number": (lambda p: pdeopt.assemble_operators(p.grid, basis=(0,)), OptionError,
                       r"unknown operators \[0\] in basis"),
    "basis repeated": (lambda p: pdeopt.assemble_operators(p.grid, basis=("I", "dx", "I")),
                       InputError, r"basis repeats \['I'\]"),
    "basis of the grid on a mesh": (
        lambda p: pdeopt.assemble_operators(
            fd.FunctionSpace(fd.UnitSquareMesh(3, 3, comm=MPI.COMM_SELF), "CG", 1),
            basis=("I", "dxy")), InputError, "need a PixelGrid"),
    "domain an array": (lambda p: pdeopt.assemble_operators(np.zeros((8, 8))), InputError,
                        "domain=.*PixelGrid, a Firedrake FunctionSpace or a PointDomain"),
    "domain a P2 space": (
        lambda p: pdeopt.assemble_operators(
            fd.FunctionSpace(fd.UnitSquareMesh(3, 3, comm=MPI.COMM_SELF), "CG", 2)),
        InputError, "degree 2"),
    "domain a vector space": (
        lambda p: pdeopt.assemble_operators(
            fd.VectorFunctionSpace(fd.UnitSquareMesh(3, 3, comm=MPI.COMM_SELF), "CG", 1)),
        InputError, r"value shape \(2,\)"),
    # the schemes' other arguments
    "scheme operators an array": (lambda p: pdeopt.ParabolicScheme(p.ops.mass, pdeopt.Tanh(),
                                                                   step=0.1),
                                  InputError, "ParabolicScheme: operators="),
    "activation a name": (lambda p: pdeopt.LeapfrogScheme(p.ops, "tanh", step=0.1), InputError,
                          "LeapfrogScheme: activation='tanh'.*activation_by_name"),
    "activation a class": (lambda p: pdeopt.ForwardEulerScheme(p.ops, pdeopt.Tanh, step=0.1),
                           InputError, r"activation=.*Tanh\(\)"),
    "activation None": (lambda p: pdeopt.ParabolicScheme(p.ops, None, step=0.1), InputError,
                        "activation=None"),
    "diffusivity negative": (lambda p: pdeopt.IMEXScheme(p.ops, pdeopt.Tanh(), step=0.1,
                                                         diffusivity=-1.0),
                             InputError, "diffusivity=-1.0"),
    "diffusivity NaN": (lambda p: pdeopt.IMEXScheme(p.ops, pdeopt.Tanh(), step=0.1,
                                                    diffusivity=math.nan),
                        InputError, "diffusivity=nan"),
    "diffusivity inf": (lambda p: pdeopt.IMEXScheme(p.ops, pdeopt.Tanh(), step=0.1,
                                                    diffusivity=math.inf),
                        InputError, "diffusivity=inf"),
    "diffusivity a string": (lambda p: pdeopt.IMEXScheme(p.ops, pdeopt.Tanh(), step=0.1,
                                                         diffusivity="1"),
                             InputError, "diffusivity='1'"),
    "step times diffusivity overflows": (
        lambda p: pdeopt.IMEXScheme(p.ops, pdeopt.Tanh(), step=1e300, diffusivity=1e300),
        InputError, "step \\* diffusivity"),
    "IMEX solver_parameters a list": (
        lambda p: pdeopt.IMEXScheme(p.ops, pdeopt.Tanh(), step=0.1,
                                    solver_parameters=[("pc_type", "lu")]),
        OptionError, "solver_parameters="),
    "IMEX options_prefix a number": (
        lambda p: pdeopt.IMEXScheme(p.ops, pdeopt.Tanh(), step=0.1, options_prefix=3),
        OptionError, "options_prefix=3"),
    # activations and names
    "epsilon zero": (lambda p: pdeopt.SmoothReLU(0.0), InputError, "epsilon=0.0"),
    "epsilon negative": (lambda p: pdeopt.SmoothReLU(-0.1), InputError, "epsilon=-0.1"),
    "epsilon NaN": (lambda p: pdeopt.SmoothReLU(math.nan), InputError, "epsilon=nan"),
    "epsilon inf": (lambda p: pdeopt.SmoothReLU(math.inf), InputError, "epsilon=inf"),
    "epsilon underflows": (lambda p: pdeopt.SmoothReLU(1e-200), InputError, "epsilon=1e-200"),
    "epsilon overflows": (lambda p: pdeopt.SmoothReLU(1e200), InputError, "epsilon=1e\\+200"),
    "epsilon a string": (lambda p: pdeopt.SmoothReLU("0.1"), InputError, "epsilon='0.1'"),
    "epsilon a bool": (lambda p: pdeopt.SmoothReLU(True), InputError, "epsilon=True"),
    "unknown activation": (lambda p: pdeopt.activation_by_name("relu"), OptionError,
                           "unknown activation 'relu'; choose from"),
    "activation name a number": (lambda p: pdeopt.activation_by_name(3), OptionError,
                                 "unknown activation 3"),
    "unknown activation in the table": (lambda p: pdeopt.ACTIVATIONS["gelu"], OptionError,
                                        "unknown activation 'gelu'"),
    "unknown scheme": (lambda p: pdeopt.SCHEMES["euler"], OptionError,
                       "unknown scheme 'euler'; choose from .*forward_euler"),
    "scheme name unhashable": (lambda p: pdeopt.SCHEMES[["imex"]], OptionError,
                               "unknown scheme"),
    # the network
    "channels zero": (lambda p: pdeopt.Network(p.scheme, channels=0, depth=2), InputError,
                      "channels=0"),
    "channels negative": (lambda p: pdeopt.Network(p.scheme, channels=-2, depth=2), InputError,
                          "channels=-2"),
    "channels a float": (lambda p: pdeopt.Network(p.scheme, channels=2.0, depth=2), InputError,
                         "channels=2.0"),
    "channels a bool": (lambda p: pdeopt.Network(p.scheme, channels=True, depth=2), InputError,
                        "channels=True"),
    "channels a string": (lambda p: pdeopt.Network(p.scheme, channels="2", depth=2),
                          InputError, "channels='2'"),
    "depth zero": (lambda p: pdeopt.Network(p.scheme, channels=2, depth=0), InputError,
                   "depth=0"),
    "depth negative": (lambda p: pdeopt.Network(p.scheme, channels=2, depth=-1), InputError,
                       "depth=-1"),
    "depth a float": (lambda p: pdeopt.Network(p.scheme, channels=2, depth=2.5), InputError,
                      "depth=2.5"),
    "depth None": (lambda p: pdeopt.Network(p.scheme, channels=2, depth=None), InputError,
                   "depth=None"),
    "in_channels zero": (lambda p: pdeopt.Network(p.scheme, 2, 2, in_channels=0), InputError,
                         "in_channels=0"),
    "scheme not a Scheme": (lambda p: pdeopt.Network("parabolic", channels=2, depth=2),
                            InputError, "scheme='parabolic'"),
    "opening activation a name": (
        lambda p: pdeopt.Network(p.scheme, 2, 2, opening_activation="tanh"), InputError,
        "opening_activation='tanh'"),
    # the readouts
    "classifier channels zero": (lambda p: pdeopt.PooledClassifier(p.grid, 0, 10), InputError,
                                 "PooledClassifier: channels=0"),
    "classifier channels a float": (lambda p: pdeopt.PooledClassifier(p.grid, 1.5, 10),
                                    InputError, "channels=1.5"),
    "classifier one class": (lambda p: pdeopt.PooledClassifier(p.grid, 2, 1), InputError,
                             "classes=1.*two classes"),
    "classifier classes a float": (lambda p: pdeopt.PooledClassifier(p.grid, 2, 10.0),
                                   InputError, "classes=10.0"),
    "classifier grid an array": (lambda p: pdeopt.PooledClassifier(np.zeros((8, 8)), 2, 10),
                                 InputError, "grid=.*PixelGrid"),
    "classifier on an odd grid": (lambda p: pdeopt.PooledClassifier(
        pdeopt.PixelGrid(7, comm=MPI.COMM_SELF), 2, 10), InputError, "even image sides"),
    "regression outputs zero": (lambda p: pdeopt.ProbeRegression(p.grid, 2, PROBES, 0),
                                InputError, "outputs=0"),
    "regression channels negative": (lambda p: pdeopt.ProbeRegression(p.grid, -1, PROBES, 5),
                                     InputError, "channels=-1"),
    "probes empty": (lambda p: pdeopt.ProbeRegression(p.grid, 2, [], 1), InputError,
                     "probes=.* is empty"),
    "probe outside the grid": (lambda p: pdeopt.ProbeRegression(p.grid, 2, [(1, 1), (8, 2)], 2),
                               InputError, r"inside \(8, 8\), got \[\[8, 2\]\]"),
    "probe negative": (lambda p: pdeopt.ProbeRegression(p.grid, 2, [(-1, 2)], 1), InputError,
                       r"got \[\[-1, 2\]\]"),
    "probes fractional": (lambda p: pdeopt.ProbeRegression(p.grid, 2, [(1.5, 2.0)], 1),
                          InputError, "probes have dtype float64"),
    "probes NaN": (lambda p: pdeopt.ProbeRegression(p.grid, 2, [(math.nan, 2)], 1), InputError,
                   "probes have dtype"),
    "probes strings": (lambda p: pdeopt.ProbeRegression(p.grid, 2, [("a", "b")], 1), InputError,
                       "probes have dtype"),
    "probes three columns": (lambda p: pdeopt.ProbeRegression(p.grid, 2, [(1, 2, 3)], 1),
                             InputError, r"probes have shape \(1, 3\)"),
    "probes ragged": (lambda p: pdeopt.ProbeRegression(p.grid, 2, [(1, 2), (3,)], 1),
                      InputError, "probes are not an array"),
    "probes repeated": (lambda p: pdeopt.ProbeRegression(p.grid, 2, [(1, 2), (1, 2)], 1),
                        InputError, r"probes repeat the pixels \[\[1, 2\]\]"),
    "field misfit channels zero": (lambda p: pdeopt.FieldMisfit(p.ops, channels=0), InputError,
                                   "FieldMisfit: channels=0"),
    "field misfit of a mass array": (lambda p: pdeopt.FieldMisfit(p.ops.mass, channels=2),
                                     InputError, "OperatorSet"),
    # the model
    "readout channels mismatched": (
        lambda p: pdeopt.Model(p.network, pdeopt.PooledClassifier(p.grid, 3, 10)), InputError,
        "readout reads 3 channels but the network has 2"),
    "readout on another grid": (
        lambda p: pdeopt.Model(p.network, pdeopt.ProbeRegression(
            pdeopt.PixelGrid(10, comm=MPI.COMM_SELF), 2, [(1, 1)], 1)), InputError,
        "the readout has 100 points .* the network 64"),
    "network not a Network": (lambda p: pdeopt.Model(p.scheme, p.classifier), InputError,
                              "network=.*must be a Network"),
    "readout not a Readout": (lambda p: pdeopt.Model(p.network, "classifier"), InputError,
                              "readout='classifier'"),
    # initial controls
    "seed negative": (lambda p: p.model.initial_controls(seed=-1), InputError, "seed=-1"),
    "seed a float": (lambda p: p.model.initial_controls(seed=1.5), InputError, "seed=1.5"),
    "seed None": (lambda p: p.model.initial_controls(seed=None), InputError, "seed=None"),
    "seed a bool": (lambda p: p.model.initial_controls(seed=True), InputError, "seed=True"),
    "scale NaN": (lambda p: p.model.initial_controls(scale=math.nan), InputError, "scale=nan"),
    "scale negative": (lambda p: p.model.initial_controls(scale=-1.0), InputError,
                       "scale=-1.0"),
    "scale inf": (lambda p: p.model.initial_controls(scale=math.inf), InputError, "scale=inf"),
    "readout_scale a string": (lambda p: p.model.initial_controls(readout_scale="1"),
                               InputError, "readout_scale='1'"),
    "network rng a seed": (lambda p: p.network.initial_controls(0), InputError, "rng=0"),
    # the control layout
    "layout block not a pair": (lambda p: ControlLayout([("w",)]), InputError, "block="),
    "layout name not a string": (lambda p: ControlLayout([(3, (2,))]), InputError,
                                 "block name 3"),
    "layout extent negative": (lambda p: ControlLayout([("w", (2, -1))]), InputError,
                               "shape of 'w'=-1"),
    "layout extent a float": (lambda p: ControlLayout([("w", (2.5,))]), InputError,
                              "shape of 'w'=2.5"),
    "layout shape a number": (lambda p: ControlLayout([("w", 4)]), InputError, "block="),
    "layout unknown block": (lambda p: p.model.layout.slice("readout.weights"), OptionError,
                             "no control block 'readout.weights'"),
    "layout views of a list": (lambda p: p.model.layout.views(list(p.theta)), InputError,
                               "control vector is a list"),
}


@pytest.mark.parametrize("case", BAD_CONSTRUCTORS)
def test_a_bad_argument_is_named(parts, case):
    build, error, match = BAD_CONSTRUCTORS[case]
    with pytest.raises(error, match=match):
        build(parts)


BAD_PREDICTIONS = {
    "x NaN": (lambda p: (p.theta, _with_nan(p.x)), "Model: x contains 1 NaN"),
    "x inf": (lambda p: (p.theta, np.where(p.x > 0.5, math.inf, p.x)), "Model: x contains"),
    "x complex": (lambda p: (p.theta, p.x + 1j), "Model: x has dtype complex128"),
    "x strings": (lambda p: (p.theta, p.x.astype(str)), "Model: x has dtype <U"),
    "x ragged": (lambda p: (p.theta, [[1.0], [1.0, 2.0]]), "Model: x is not an array"),
    "x of another grid": (lambda p: (p.theta, p.x[:60]), r"must have shape \(n_points=64"),
    "x without channels": (lambda p: (p.theta, p.x[..., 0]), "must have shape"),
    "x an empty batch": (lambda p: (p.theta, p.x[:, :0]), "holds no samples"),
    "theta NaN": (lambda p: (_with_nan(p.theta, 4), p.x), "Model: theta contains 1 NaN"),
    "theta short": (lambda p: (p.theta[:-1], p.x), r"Model: theta has shape \(\d+,\)"),
    "theta a string": (lambda p: ("theta", p.x), "Model: theta has dtype <U"),
}


@pytest.mark.parametrize("method", ["output", "predict", "probabilities"])
@pytest.mark.parametrize("case", BAD_PREDICTIONS)
def test_bad_prediction_data_is_refused(parts, method, case):
    arguments, match = BAD_PREDICTIONS[case]
    with pytest.raises(InputError, match=match):
        getattr(parts.model, method)(*arguments(parts))


def test_nan_data_gives_no_nan_probabilities_and_no_accuracy(parts):
    x = _with_nan(parts.x)
    for call in (lambda: parts.model.probabilities(parts.theta, x),
                 lambda: parts.model.accuracy(parts.theta, x, np.zeros(3, dtype=int))):
        with pytest.raises(InputError, match="NaN or Inf"):
            call()
    good = parts.model.probabilities(parts.theta, parts.x)
    assert np.all(np.isfinite(good)) and np.allclose(good.sum(axis=1), 1.0)


BAD_READOUT_PREDICTIONS = {
    "u NaN": (lambda u, w: (_with_nan(u), w), "u \\(the network output\\) contains 1 NaN"),
    "u of the wrong channels": (lambda u, w: (u[..., :1], w), "u must be the network output"),
    "u an empty batch": (lambda u, w: (u[:, :0], w), "u must be the network output"),
    "w without the readout": (lambda u, w: (u, {}), "w must be the model's control views"),
    "w NaN": (lambda u, w: (u, dict(w, **{"readout.bias": w["readout.bias"] * math.nan})),
              "readout controls contains"),
}


@pytest.mark.parametrize("which", ["classifier", "regression"])
@pytest.mark.parametrize("case", BAD_READOUT_PREDICTIONS)
def test_a_readout_refuses_a_bad_network_output(parts, regression, which, case):
    model, theta = (parts.model, parts.theta) if which == "classifier" else regression
    u = model.output(theta, parts.x)
    w = model.layout.views(theta)
    bad, match = BAD_READOUT_PREDICTIONS[case]
    with pytest.raises(InputError, match=match):
        model.readout.predict(*bad(u, w))


def test_an_overflowing_flow_is_an_error_not_a_nan(parts):
    scheme = pdeopt.ForwardEulerScheme(parts.ops, pdeopt.Tanh(), step=1e307)
    model = pdeopt.Model(pdeopt.Network(scheme, 2, 30), parts.classifier)
    with pytest.raises(InputError, match="overflowed.*reduce the step"):
        model.probabilities(model.initial_controls(readout_scale=1.0), parts.x + 1.0)


def test_a_misfit_model_has_no_predictions(parts):
    model = pdeopt.Model(parts.network, pdeopt.FieldMisfit(parts.ops, 2))
    with pytest.raises(InputError, match="FieldMisfit has no predict"):
        model.predict(model.initial_controls(), parts.x)


BAD_BATCHES = {
    "x complex": (lambda p: (p.x + 1j, np.arange(3)), "x has dtype complex"),
    "x of objects": (lambda p: (p.x.astype(object), np.arange(3)), "x has dtype object"),
    "x empty batch": (lambda p: (p.x[:, :0], np.arange(0)), "holds no samples"),
    "x NaN": (lambda p: (_with_nan(p.x), np.arange(3)), "1 NaN or Inf"),
}


@pytest.mark.parametrize("case", BAD_BATCHES)
def test_a_bad_training_batch_is_refused(parts, case):
    arguments, match = BAD_BATCHES[case]
    with pytest.raises(InputError, match=match):
        check_batch(parts.model, *arguments(parts))


def _digits(**kwargs):
    return lambda p: pdeopt.load_digits(p.grid, **kwargs)


def _diffusion(n=2, probes=((1, 1), (2, 3)), **kwargs):
    return lambda p: pdeopt.diffusion_reaction_data(p.grid, n, probes, **kwargs)


BAD_DATA = {
    "digits limit zero": (_digits(limit=0), "limit=0"),
    "digits limit negative": (_digits(limit=-5), "limit=-5"),
    "digits limit a float": (_digits(limit=100.0), "limit=100.0"),
    "digits limit a bool": (_digits(limit=True), "limit=True"),
    "digits limit a string": (_digits(limit="100"), "limit='100'"),
    "digits limit below the classes": (_digits(limit=5), "limit=5 .*raise limit"),
    "digits limit just below all": (_digits(limit=1790), "limit=1790"),
    "digits seed negative": (_digits(seed=-1), "seed=-1"),
    "digits seed too large": (_digits(seed=2**32), r"seed=4294967296 must be .*\[0, 4294967296\)"),
    "digits seed a float": (_digits(seed=0.5), "seed=0.5"),
    "digits two fractions": (_digits(fractions=(0.5, 0.5)), "fractions=.*three"),
    "digits fractions summing to 1.1": (_digits(fractions=(0.6, 0.2, 0.3)), "summing to 1"),
    "digits a zero fraction": (_digits(fractions=(0.8, 0.2, 0.0)), r"fractions\[2\]=0.0"),
    "digits a NaN fraction": (_digits(fractions=(0.6, math.nan, 0.2)), r"fractions\[1\]=nan"),
    "digits a string fraction": (_digits(fractions=("0.6", 0.2, 0.2)), r"fractions\[0\]='0.6'"),
    "digits fractions a number": (_digits(fractions=1.0), "fractions=1.0"),
    "digits too uneven": (_digits(fractions=(0.99, 0.005, 0.005)), "fractions less uneven"),
    "digits grid an array": (lambda p: pdeopt.load_digits(np.zeros((8, 8))), "grid=.*PixelGrid"),
    "samples zero": (_diffusion(n=0), "n=0"),
    "samples negative": (_diffusion(n=-3), "n=-3"),
    "samples a float": (_diffusion(n=2.0), "n=2.0"),
    "diffusion diffusivity zero": (_diffusion(diffusivity=0.0), "diffusivity=0.0"),
    "diffusion diffusivity negative": (_diffusion(diffusivity=-0.05), "diffusivity=-0.05"),
    "diffusion diffusivity NaN": (_diffusion(diffusivity=math.nan), "diffusivity=nan"),
    "diffusion diffusivity inf": (_diffusion(diffusivity=math.inf), "diffusivity=inf"),
    "diffusion diffusivity a string": (_diffusion(diffusivity="0.05"), "diffusivity='0.05'"),
    "diffusion reaction zero": (_diffusion(reaction=0.0), "reaction=0.0.*Neumann"),
    "diffusion reaction negative": (_diffusion(reaction=-1.0), "reaction=-1.0"),
    "diffusion reaction NaN": (_diffusion(reaction=math.nan), "reaction=nan"),
    "diffusion reaction complex": (_diffusion(reaction=1 + 1j), "reaction=\\(1\\+1j\\)"),
    "diffusion modes zero": (_diffusion(modes=0), "modes=0"),
    "diffusion seed negative": (_diffusion(seed=-2), "seed=-2"),
    "diffusion probes empty": (_diffusion(probes=[]), "probes=.* is empty"),
    "diffusion probe outside": (_diffusion(probes=[(0, 8)]), r"got \[\[0, 8\]\]"),
    "diffusion probes floats": (_diffusion(probes=[(0.5, 1.0)]), "probes have dtype float64"),
    "diffusion solver_parameters a string": (_diffusion(solver_parameters="lu"),
                                             "solver_parameters='lu'"),
    "diffusion options_prefix None": (_diffusion(options_prefix=None), "options_prefix=None"),
    "diffusion grid an array": (lambda p: pdeopt.diffusion_reaction_data(np.zeros(3), 2, PROBES),
                                "grid=.*PixelGrid"),
    "images strings": (lambda p: p.grid.to_field(np.full((2, 8, 8), "a")), "images have dtype"),
}


@pytest.mark.parametrize("case", BAD_DATA)
def test_a_bad_data_argument_is_named(parts, case):
    build, match = BAD_DATA[case]
    with pytest.raises(PdeoptError, match=match) as info:
        build(parts)
    assert isinstance(info.value, (InputError, OptionError))


def test_the_valid_corner_cases_still_work(parts):
    """What the checks must not refuse: a zero diffusivity, the smallest grid, numpy scalars,
    one probe given as a pair, a basis given as a mapping's keys, two classes."""
    pdeopt.IMEXScheme(parts.ops, pdeopt.Tanh(), step=np.float64(0.1), diffusivity=0)
    grid = pdeopt.PixelGrid(np.int64(4), 3, comm=MPI.COMM_SELF)
    assert grid.shape == (3, 4)
    assert pdeopt.assemble_operators(parts.grid, basis=pdeopt.GRID_SHIFTS).S == 9
    readout = pdeopt.ProbeRegression(parts.grid, 2, (3, 4), 1)
    assert readout.probes.tolist() == [[3, 4]]
    pdeopt.PooledClassifier(parts.grid, np.int32(2), 2)
    assert pdeopt.Network(parts.scheme, np.int64(2), 1).N == 1
    assert pdeopt.SmoothReLU(1e-100).epsilon == 1e-100
    assert "tanh" in pdeopt.ACTIVATIONS and "relu" not in pdeopt.ACTIVATIONS
    assert pdeopt.SCHEMES.get("euler") is None and len(pdeopt.SCHEMES) == 5


# -- property-based: any argument builds a working object or is a pdeopt error ---------------
def floats(*bounds, **kwargs):
    """Floats without subnormals (a library in the stack flushes them to zero)."""
    return st.floats(*bounds, allow_subnormal=False, **kwargs)


ANY_REAL = st.one_of(floats(allow_nan=True, allow_infinity=True), st.integers(-3, 10**6),
                     st.sampled_from([1e300, -1e300, 1e-300]))


def half(valid, invalid):
    """``valid`` half of the time, ``invalid`` otherwise (``one_of`` would weigh the branches of
    a nested ``one_of`` one by one)."""
    return st.booleans().flatmap(lambda ok: valid if ok else invalid)


#: Anything but a positive finite real: zero, negatives, NaN, infinities and other types.
NOT_POSITIVE = st.one_of(floats(max_value=0.0, allow_infinity=True),
                         st.sampled_from([math.nan, math.inf, -math.inf]), st.integers(-3, 0),
                         st.none(), st.booleans(), st.text(max_size=3),
                         st.builds(complex, floats(-10, 10), floats(-10, 10)))
#: Positive reals half of the time, anything else otherwise; a few fixed positive values only,
#: since each new step or coefficient of a Firedrake form compiles a new kernel.
POSITIVE_OR_NOT = half(st.sampled_from([1e-3, 0.1, 0.25, 1.0, 10.0, 1e300]), NOT_POSITIVE)
#: Counts: about half of them valid, so that the success branch is exercised too.
ANY_COUNT = half(st.sampled_from([1, 2, 3, np.int64(2)]),
                 st.one_of(st.integers(-3, 0), st.sampled_from([2.0, 1.5, True, False, "2", None,
                                                                np.float64(2.0)])))
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def _finite_or_error(model, x):
    """The model's probabilities or predictions on ``x``: finite, or a pdeopt error."""
    theta = model.initial_controls(seed=0, readout_scale=1.0)
    try:
        out = (model.probabilities if isinstance(model.readout, pdeopt.PooledClassifier)
               else model.predict)(theta, x)
    except InputError as e:  # a huge step can overflow the flow: named, never a NaN
        assert "overflowed" in str(e)
        event("overflow named")
        return
    assert np.all(np.isfinite(out))
    event("finite output")


@SETTINGS
@given(cls=st.sampled_from(SCHEME_CLASSES), step=POSITIVE_OR_NOT, depth=st.integers(1, 3))
def test_any_step_builds_a_finite_scheme_or_is_a_pdeopt_error(parts, cls, step, depth):
    try:
        scheme = cls(parts.ops, pdeopt.Tanh(), step=step)
    except PdeoptError as e:
        assert "step=" in str(e) or "step * diffusivity" in str(e)
        event("refused")
        return
    assert scheme.h > 0 and math.isfinite(scheme.h)
    model = pdeopt.Model(pdeopt.Network(scheme, 2, depth), parts.classifier)
    _finite_or_error(model, parts.x)


@settings(SETTINGS, max_examples=20)  # each new h * kappa compiles a new form: fewer cases
@given(diffusivity=POSITIVE_OR_NOT)
def test_any_diffusivity_builds_a_finite_imex_scheme_or_is_a_pdeopt_error(parts, diffusivity):
    try:
        scheme = pdeopt.IMEXScheme(parts.ops, pdeopt.Tanh(), step=0.25, diffusivity=diffusivity)
    except PdeoptError as e:
        assert "diffusivity" in str(e)
        event("refused")
        return
    _finite_or_error(pdeopt.Model(pdeopt.Network(scheme, 2, 2), parts.classifier), parts.x)


@SETTINGS
@given(channels=ANY_COUNT, depth=ANY_COUNT, in_channels=ANY_COUNT)
def test_any_channels_and_depth_build_a_finite_network_or_are_a_pdeopt_error(
        parts, channels, depth, in_channels):
    try:
        network = pdeopt.Network(parts.scheme, channels, depth, in_channels=in_channels)
        readout = pdeopt.PooledClassifier(parts.grid, channels, classes=3)
    except PdeoptError as e:
        assert any(f"{name}=" in str(e) for name in ("channels", "depth", "in_channels"))
        event("refused")
        return
    x = np.random.default_rng(1).random((parts.grid.n_owned, 2, network.c_in))
    _finite_or_error(pdeopt.Model(network, readout), x)


@SETTINGS
@given(epsilon=half(floats(1e-100, 1e100),
                    st.one_of(NOT_POSITIVE, st.sampled_from([1e-200, 1e-101, 1e101, 1e200]))),
       opening=st.booleans())
def test_any_smoothing_width_gives_a_finite_c2_activation_or_is_a_pdeopt_error(
        parts, epsilon, opening):
    try:
        sigma = pdeopt.SmoothReLU(epsilon)
    except PdeoptError as e:
        assert "epsilon=" in str(e)
        event("refused")
        return
    z = np.array([-1e6, -1.0, 0.0, 1e-3, 1.0, 1e6])
    for values in sigma.jet(z):
        assert np.all(np.isfinite(values))
    assert np.all(sigma.second_derivative(z) >= 0)  # convex, C^2
    scheme = pdeopt.ParabolicScheme(parts.ops, sigma, step=0.5)
    network = pdeopt.Network(scheme, 2, 2, opening_activation=sigma if opening else None)
    _finite_or_error(pdeopt.Model(network, parts.classifier), parts.x)


PROBES_VALID = st.tuples(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), min_size=1,
                                  max_size=4, unique=True), st.integers(1, 3))
PROBES_ANY = st.tuples(st.lists(st.tuples(st.integers(-1, 8), st.integers(-1, 8)), max_size=4),
                       ANY_COUNT)


@SETTINGS
@given(arguments=half(PROBES_VALID, PROBES_ANY))
def test_any_probes_build_a_finite_regression_or_are_a_pdeopt_error(parts, arguments):
    probes, outputs = arguments
    try:
        readout = pdeopt.ProbeRegression(parts.grid, 2, probes, outputs)
    except PdeoptError as e:
        assert "probes" in str(e) or "outputs=" in str(e)
        event("refused")
        return
    assert probes and len(set(probes)) == len(probes)
    assert all(0 <= i < 8 for pair in probes for i in pair)
    _finite_or_error(pdeopt.Model(parts.network, readout), parts.x)


#: Few distinct coefficients: each pair (kappa, c) compiles a new form.
DIFFUSION_VALID = st.tuples(st.integers(1, 3), st.sampled_from([0.05, 1.0]),
                            st.sampled_from([1.0, 10.0]), st.integers(0, 2**40))
DIFFUSION_ANY = st.tuples(ANY_COUNT, POSITIVE_OR_NOT, POSITIVE_OR_NOT,
                          st.one_of(st.integers(-2, 2**40), floats(0, 2)))


@settings(SETTINGS, max_examples=20)
@given(arguments=half(DIFFUSION_VALID, DIFFUSION_ANY))
def test_any_diffusion_reaction_arguments_give_finite_data_or_a_pdeopt_error(parts, arguments):
    n, diffusivity, reaction, seed = arguments
    try:
        data = pdeopt.diffusion_reaction_data(parts.grid, n, PROBES, seed=seed,
                                              diffusivity=diffusivity, reaction=reaction)
    except PdeoptError as e:
        assert any(f"{name}=" in str(e) for name in ("n", "diffusivity", "reaction", "seed"))
        event("refused")
        return
    assert len(data) == n and np.all(np.isfinite(data.targets)) and np.all(np.isfinite(data.x))
    event("data")


DIGITS_VALID = st.tuples(st.one_of(st.none(), st.integers(300, 1797)),
                         st.tuples(floats(0.1, 0.5), floats(0.1, 0.4)), st.integers(0, 3))
DIGITS_ANY = st.tuples(st.one_of(st.none(), st.integers(-2, 2000), floats(0, 100)),
                       st.tuples(floats(-0.1, 0.6), floats(-0.1, 0.4)), st.integers(-1, 3))


@settings(SETTINGS, max_examples=25)
@given(arguments=half(DIGITS_VALID, DIGITS_ANY))
def test_any_digits_split_is_stratified_or_a_pdeopt_error(parts, arguments):
    limit, (f_train, f_val), seed = arguments
    fractions = (f_train, f_val, 1.0 - f_train - f_val)
    try:
        data = pdeopt.load_digits(parts.grid, seed=seed, fractions=fractions, limit=limit)
    except PdeoptError as e:
        assert any(f"{name}" in str(e) for name in ("limit", "fractions", "seed"))
        event("refused")
        return
    for split in data.values():
        assert set(split.labels.tolist()) == set(range(10)) and np.all(np.isfinite(split.x))
    event("split")


@SETTINGS
@given(values=st.lists(st.one_of(ANY_REAL, st.sampled_from([math.nan, math.inf, -math.inf])),
                       min_size=1, max_size=4),
       where=st.sampled_from(["theta", "x"]))
def test_any_prediction_values_give_finite_probabilities_or_a_pdeopt_error(parts, values,
                                                                           where):
    theta, x = parts.theta.copy(), parts.x.copy()
    target = theta if where == "theta" else x.reshape(-1)
    target[:len(values)] = values
    try:
        p = parts.model.probabilities(theta, x)
    except PdeoptError as e:
        assert where in str(e) or "overflowed" in str(e)
        event("refused")
        return
    assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1.0)


# -- two ranks: data that is bad on one rank fails on both -----------------------------------
@pytest.mark.parallel(nprocs=2)
@pytest.mark.parametrize("bad", ["nan", "shape"])
@pytest.mark.parametrize("method", ["probabilities", "predict", "output"])
def test_bad_prediction_data_on_one_rank_fails_on_both(bad, method):
    comm = MPI.COMM_WORLD
    assert comm.size == 2
    p = Parts(comm=comm)
    x = p.x
    if comm.rank == 1:
        x = _with_nan(x, (0, 0, 0)) if bad == "nan" else x[:-1]
    match = "Model: x contains 1 NaN" if bad == "nan" else "must have shape .* on rank 1"
    with pytest.raises(InputError, match=match):
        getattr(p.model, method)(p.theta, x)
    comm.Barrier()  # both ranks got here: no rank waits for the other
    good = p.model.probabilities(p.theta, p.x)
    assert np.all(np.isfinite(good))


@pytest.mark.parallel(nprocs=2)
def test_a_training_batch_bad_on_one_rank_fails_on_both():
    comm = MPI.COMM_WORLD
    p = Parts(comm=comm)
    labels = np.arange(3)
    x = p.x.astype(complex) if comm.rank == 0 else p.x
    with pytest.raises(InputError, match="x has dtype complex"):
        check_batch(p.model, x, labels)
    x = p.x[:-2] if comm.rank == 0 else p.x
    with pytest.raises(InputError, match="on rank 0"):
        check_batch(p.model, x, labels)
    comm.Barrier()
