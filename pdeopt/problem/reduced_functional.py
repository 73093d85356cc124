r"""The reduced functional of training: :math:`\hat J(\theta) = J(u(\theta), \theta)`."""

import numpy as np
from pyadjoint import Control, Tape
from pyadjoint import ReducedFunctional as _PyadjointReducedFunctional
from pyadjoint.tape import annotate_tape, continue_annotation, pause_annotation, set_working_tape

from pdeopt.checks import instance
from pdeopt.data.validation import check_batch
from pdeopt.errors import InputError
from pdeopt.model.model import Model
from pdeopt.problem.array_functional import ArrayFunctional
from pdeopt.problem.blocks import GaussNewtonBlock
from pdeopt.problem.control_array import ControlArray, as_array
from pdeopt.problem.counts import Counts
from pdeopt.problem.fingerprint import (data_fingerprint, model_fingerprint,
                                        regularizer_fingerprint)
from pdeopt.problem.functional import training_loss
from pdeopt.problem.regularizer import Regularizer

__all__ = ["ReducedFunctional", "check_model_and_regularizer"]


def check_model_and_regularizer(owner: str, model, regularizer) -> None:
    """A :class:`~pdeopt.model.model.Model`, and ``None`` or a
    :class:`~pdeopt.problem.regularizer.Regularizer` of its controls."""
    instance(owner, "model", model, Model, "pdeopt.Model(network, readout)", error=InputError)
    if regularizer is None:
        return
    instance(owner, "regularizer", regularizer, Regularizer, "pdeopt.Regularizer(model), or None",
             error=InputError)
    if regularizer.layout.size != model.layout.size:
        raise InputError(f"{owner}: the regularizer is of {regularizer.layout.size} controls, "
                         f"the model has {model.layout.size}; build it as "
                         f"pdeopt.Regularizer(model).")


class ReducedFunctional(_PyadjointReducedFunctional, ArrayFunctional):
    r"""The reduced training functional on its own pyadjoint tape.

    .. math::

        \hat J(\theta) = \frac1B\sum_{b}\ell\big(Q u_N^{(b)}(\theta), y^{(b)}\big) + R(\theta),
        \quad u_{k+1} = \Phi_h(u_k;\theta_k),\ u_0 = \text{lift}(x).

    The gradient is one adjoint sweep; a Hessian action is one tangent-linear plus one
    second-order adjoint sweep, reusing the stored forward and adjoint sweeps. Besides
    pyadjoint's interface (``__call__``, ``derivative``, ``hessian`` on
    :class:`~pdeopt.problem.control_array.ControlArray`), it is an
    :class:`~pdeopt.problem.array_functional.ArrayFunctional`: :meth:`objective`,
    :meth:`gradient`, :meth:`hessian_action` and :meth:`gauss_newton_action` take plain arrays,
    re-evaluate only when the point changes, and count the sweeps in :attr:`counts`.

    Parameters
    ----------
    model
        The :class:`~pdeopt.model.model.Model` (network and readout).
    x
        Input block ``(n_owned, batch, in_channels)``.
    target
        What the readout compares with (its ``check_target`` says): labels ``(batch,)`` for
        a classifier, ``(batch, outputs)`` for a probe regression, fields
        ``(n_owned, batch, channels)`` for a field misfit.
    regularizer
        A :class:`~pdeopt.problem.regularizer.Regularizer`, or ``None``.
    theta
        Initial controls (flat, replicated); ``None`` takes ``model.initial_controls()``
        (seed 0, readout weights zero).
    """

    subsamples = True

    def __init__(self, model, x, target, regularizer=None, theta=None):
        check_model_and_regularizer("ReducedFunctional", model, regularizer)
        x, target = check_batch(model, x, target)
        self.model, self.x, self.target, self.regularizer = model, x, target, regularizer
        theta = self.check_point(model.initial_controls() if theta is None else theta,
                                 "the initial controls")
        self._sweeps = {"forward": 1, "adjoint": 0, "tlm": 0, "soa": 0, "gauss_newton": 0}
        tape = Tape()
        annotating = annotate_tape()
        with set_working_tape(tape):
            continue_annotation()
            try:
                control = ControlArray(theta, comm=model.comm)
                J = training_loss(model, control, x, target, regularizer)
            finally:
                if not annotating:
                    pause_annotation()
        super().__init__(J, Control(control), tape=tape)
        self._point = theta.copy()
        self._value = float(J)
        self.fraction = 1.0
        self._gradient = None

    # -- pyadjoint interface, counted -------------------------------------------------------
    def __call__(self, values):
        try:
            value = super().__call__(values)
        except Exception:
            self._point = np.full(self.size, np.nan)  # the tape is half-replayed: re-run it
            raise
        self._sweeps["forward"] += 1
        self._point = as_array(values[0] if isinstance(values, (list, tuple)) else values).copy()
        self._value, self._gradient = float(value), None
        return value

    def derivative(self, adj_input=1.0, apply_riesz=False):
        d = super().derivative(adj_input=adj_input, apply_riesz=apply_riesz)
        self._sweeps["adjoint"] += 1
        self._gradient = as_array(d).copy()
        return d

    def hessian(self, m_dot, hessian_input=None, evaluate_tlm=True, apply_riesz=False):
        if self._gradient is None:
            self.derivative()
        self._sweeps["tlm"] += int(evaluate_tlm)
        self._sweeps["soa"] += 1
        return super().hessian(m_dot, hessian_input=hessian_input, evaluate_tlm=evaluate_tlm,
                               apply_riesz=apply_riesz)

    # -- array interface --------------------------------------------------------------------
    @property
    def comm(self):
        """The spatial communicator of the model."""
        return self.model.comm

    @property
    def size(self) -> int:
        """The number of controls, network and readout."""
        return self.model.layout.size

    @property
    def counts(self) -> Counts:
        """The sweeps so far (the taped forward sweep included), their work at
        :attr:`fraction`."""
        return Counts.of_sweeps(**self._sweeps, fraction=self.fraction)

    @property
    def point(self) -> np.ndarray:
        """The controls of the last evaluation (a copy)."""
        return self._point.copy()

    def fingerprint(self) -> dict:
        """The model, the data's moments and targets' hash, and the regulariser."""
        return {"size": self.size, "model": model_fingerprint(self.model),
                "data": data_fingerprint(self.x, self.target, self.model.comm),
                "regularizer": regularizer_fingerprint(self.regularizer)}

    @property
    def batch_size(self) -> int:
        """The number of samples in the batch."""
        return self.x.shape[1]

    def subsample(self, fraction: float, seed, theta=None) -> "ReducedFunctional":
        r"""The reduced functional of a uniform random subset of the batch.

        .. math::

            \hat J_S(\theta) = \frac1{|S|}\sum_{b\in S}\ell\big(Q u_N^{(b)}(\theta),
            y^{(b)}\big) + R(\theta), \quad |S| = \lceil fB\rceil,

        an unbiased sample of the data term: its Hessian or Gauss–Newton actions cost the
        fraction :math:`f` of the whole batch's (the subsampled Hessian of Byrd, Chin,
        Neveitt & Nocedal, SIAM J. Optim. 2011). Its :attr:`samples` are :math:`S` (indices
        into this batch), its :attr:`fraction` is :math:`|S|/B`.

        Parameters
        ----------
        fraction
            :math:`f \in (0, 1]`.
        seed
            Seed (an int or a sequence of ints) of the draw; every rank draws the same subset.
        theta
            The point at which it is taped (default: this functional's).
        """
        if not 0 < fraction <= 1:
            raise InputError(f"the sample fraction must lie in (0, 1], got {fraction}.")
        B = self.batch_size
        size = max(1, int(np.ceil(fraction * B)))
        S = np.sort(np.random.default_rng(seed).choice(B, size, replace=False))
        axis = 1 if self.target.ndim == 3 else 0  # field targets are (n_owned, batch, C)
        sample = ReducedFunctional(self.model, self.x[:, S], np.take(self.target, S, axis=axis),
                                   self.regularizer,
                                   theta=self._point if theta is None else theta)
        sample.samples, sample.fraction = S, len(S) / B
        return sample

    def _at(self, theta):
        theta = self.check_point(theta, "the controls")
        if not np.array_equal(theta, self._point):
            self(ControlArray(theta, comm=self.model.comm))

    def objective(self, theta) -> float:
        r""":math:`\hat J(\theta)`."""
        self._at(theta)
        return self._value

    def gradient(self, theta) -> np.ndarray:
        r""":math:`\nabla\hat J(\theta)` (Euclidean)."""
        self._at(theta)
        if self._gradient is None:
            self.derivative()
        return self._gradient.copy()

    def hessian_action(self, theta, direction) -> np.ndarray:
        r""":math:`\nabla^2\hat J(\theta)\,\dot\theta`."""
        self.gradient(theta)
        direction = self.check_point(direction, "the direction")
        return as_array(self.hessian(ControlArray(direction, comm=self.model.comm))).copy()

    def gauss_newton_action(self, theta, direction) -> np.ndarray:
        r"""The Gauss-Newton Hessian's action,
        :math:`(J_\ell^T \nabla^2_\ell\,\ell\, J_\ell + H_R)\,\dot\theta`.

        :math:`J_\ell` is the Jacobian of the readout's logits (or output field) with respect
        to all controls; the action is one tangent-linear and one adjoint sweep. It is SPD
        for :math:`\alpha > 0`, a convex model of :math:`\hat J` far from a minimum.
        """
        self.gradient(theta)
        direction = self.check_point(direction, "the direction")
        blocks = [b for b in self.tape.get_blocks() if isinstance(b, GaussNewtonBlock)]
        for b in blocks:
            b.gauss_newton = True
        try:
            out = super().hessian(ControlArray(direction, comm=self.model.comm))
        finally:
            for b in blocks:
                b.gauss_newton = False
        self._sweeps["tlm"] += 1
        self._sweeps["gauss_newton"] += 1
        return as_array(out).copy()
