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

    NOMAD runs on global rank 0 and sends each block of points to the other ranks, which
    evaluate it with it (:meth:`~pdeopt.calibration.Calibration.evaluate_many`, one point per
    ensemble member), so every rank follows one path even if their processes made other
    NOMAD runs before: with a nonzero ``SEED`` a process's first NOMAD run takes another path
    than its later ones (measured with PyNomadBBO 4.6.0; with ``SEED 0`` every run takes the
    same path), so compare runs made in fresh processes or with ``seed=0``.

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
    block_size
        NOMAD's ``BB_MAX_BLOCK_SIZE``: the points NOMAD hands over at once, evaluated
        concurrently on the ensemble's members
        (:meth:`~pdeopt.calibration.Calibration.evaluate_many`). Default: the number of
        members (1 without an ensemble). NOMAD's path depends on the block size, not on the
        number of members: a serial run with ``block_size=2`` equals a run on 2 members.
    """

    name = "nomad"

    def __init__(self, start=None, barrier: str = "PB", seed: int | None = None,
                 parameters=(), block_size: int | None = None):
        if barrier not in ("PB", "EB"):
            raise OptionError(f"barrier = {barrier!r}: NOMAD's constraint outputs are 'PB' "
                              f"(progressive barrier) or 'EB' (extreme barrier)")
        self.start = start
        self.barrier = barrier
        self.seed = seed
        self.parameters = tuple(parameters)
        if block_size is not None and (isinstance(block_size, bool) or
                                       not isinstance(block_size, int) or block_size < 1):
            raise OptionError(f"block_size = {block_size!r} must be an integer >= 1 "
                              f"(NOMAD's BB_MAX_BLOCK_SIZE)")
        self.block_size = block_size

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
        block = calibration.members if self.block_size is None else self.block_size
        if block > 1:
            params.append(f"BB_MAX_BLOCK_SIZE {block}")
        comm = calibration.global_comm
        count = 0
        error = None

        def evaluate_all(configs):
            return calibration.evaluate_many(configs, self.name,
                                             trains_infeasible=self.trains_infeasible)

        def evaluate(points):
            # PyNomad ignores an exception raised in its callback: keep the first one, answer
            # every later point as failed without evaluating it, and raise it when NOMAD stops.
            nonlocal count, error
            if error is not None:
                return [0] * len(points)
            try:
                configs = [space.from_nomad([x.get_coord(i) for i in range(x.size())])
                           for x in points]
                comm.bcast(("evaluate", [c.key for c in configs]), root=0)
                records = evaluate_all(configs)
            except BaseException as e:
                error = e
                return [0] * len(points)
            count += len(records)
            flags = []
            for x, record in zip(points, records):
                f = record.objective
                if f is None or record.status in (Status.FAILED, Status.PRUNED):
                    f = math.inf
                # A constraint not measured (a failed or untrained point) is reported
                # satisfied: the objective already rejects the point.
                c = [record.constraints.get(n, 0.0) for n in names]
                x.setBBO(" ".join(repr(float(v)) for v in (f, *c)).encode("UTF-8"))
                flags.append(0 if record.status is Status.FAILED else 1)
            return flags

        def bb(x):
            return evaluate([x])[0]

        def bb_block(points):
            return evaluate([points.get_x(i) for i in range(points.size())])

        # NOMAD runs on global rank 0 alone and sends each block to the other ranks: its path
        # depends on the process's earlier NOMAD runs (its random generator is not reseeded
        # from SEED on every run), so ranks with other histories would ask for other points.
        if comm.rank == 0:
            try:
                PyNomad.optimize(bb_block if block > 1 else bb, x0, lb, ub, params)
            except BaseException as e:
                error = error or e
            finally:
                comm.bcast(("stop", (count, error and (type(error), str(error)))), root=0)
            if error is not None:
                raise error
            return count
        while True:
            what, message = comm.bcast(None, root=0)
            if what == "stop":
                break
            try:
                if error is None:
                    evaluate_all([space.from_key(key) for key in message])
            except BaseException as e:     # raised on every rank, rank 0's callback keeps it
                error = e
        count, failure = message
        if error is not None:
            raise error
        if failure is not None:
            cls, text = failure
            raise cls(text)
        return count
