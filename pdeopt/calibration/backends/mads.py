"""NOMAD 4's mesh adaptive direct search (PyNomadBBO), with the progressive barrier."""

import math

from pdeopt.calibration.backends.backend import Backend
from pdeopt.calibration.database import Status
from pdeopt.errors import OptionError

__all__ = ["NomadBackend"]


class NomadBackend(Backend):
    r"""MADS (Audet & Dennis 2006) through NOMAD 4 on the mixed space.

    Integers are NOMAD ``I`` variables, reals ``R`` (in :math:`\log_{10}` where ``log=True``)
    and each categorical an ``I`` index into its declared choices
    (:meth:`SearchSpace.to_nomad <pdeopt.calibration.SearchSpace.to_nomad>`): NOMAD 4 has no
    categorical type, and the index's order is the declared one. Every constraint, the work
    limit included, is one ``PB`` (progressive barrier: infeasible points are trained and
    their objective used) or ``EB`` (extreme barrier: infeasible points are rejected, so a
    point violating an a priori constraint is recorded without training) output. A failed
    evaluation is an infinite objective and a failed NOMAD evaluation.

    Parameters
    ----------
    start
        The starting configuration :math:`x_0` (default: the centre of the space).
    barrier
        ``"PB"`` or ``"EB"``.
    seed
        NOMAD's ``SEED`` (default: the calibration's seed).
    parameters
        Further NOMAD parameter lines, for example ``("DIRECTION_TYPE ORTHO 2N",)``.
    """

    name = "nomad"

    def __init__(self, start=None, barrier: str = "PB", seed: int | None = None,
                 parameters=()):
        if barrier not in ("PB", "EB"):
            raise OptionError(f"barrier = {barrier!r}: NOMAD's constraint outputs are 'PB' "
                              f"(progressive barrier) or 'EB' (extreme barrier)")
        self.start = start
        self.barrier = barrier
        self.seed = seed
        self.parameters = tuple(parameters)

    @property
    def trains_infeasible(self) -> bool:
        return self.barrier == "PB"

    def minimize(self, calibration, max_evaluations: int) -> int:
        import PyNomad

        space = calibration.space
        x0 = space.to_nomad(self._start(calibration, self.start))
        lb, ub = space.nomad_bounds()
        names = [c.name for c in space.constraints]
        if space.work_limit is not None:
            names.append("work_limit")
        seed = calibration.seed if self.seed is None else self.seed
        params = [f"DIMENSION {len(x0)}", f"BB_INPUT_TYPE {space.nomad_input_type()}",
                  "BB_OUTPUT_TYPE OBJ" + f" {self.barrier}" * len(names),
                  f"MAX_BB_EVAL {max_evaluations}", f"SEED {seed}", "DISPLAY_DEGREE 0",
                  *self.parameters]
        count = 0
        error = None

        def bb(x):
            # PyNomad ignores an exception raised in its callback: keep the first one, answer
            # every later point as failed without evaluating it, and raise it when NOMAD stops.
            nonlocal count, error
            if error is not None:
                return 0
            try:
                config = space.from_nomad([x.get_coord(i) for i in range(x.size())])
                record = calibration.evaluate(config, self.name,
                                              trains_infeasible=self.trains_infeasible)
            except BaseException as e:
                error = e
                return 0
            count += 1
            f = record.objective
            if f is None or record.status in (Status.FAILED, Status.PRUNED):
                f = math.inf
            # A constraint not measured (a failed or untrained point) is reported satisfied:
            # the objective already rejects the point.
            c = [record.constraints.get(n, 0.0) for n in names]
            x.setBBO(" ".join(repr(float(v)) for v in (f, *c)).encode("UTF-8"))
            return 0 if record.status is Status.FAILED else 1

        PyNomad.optimize(bb, x0, lb, ub, params)
        if error is not None:
            raise error
        return count
