"""Atomic, resumable optimiser checkpoints that know what they belong to.

A generation is a pair of files: ``state-<iteration>.h5`` (the arrays) and
``state-<iteration>.json`` (the scalars and the history, the name and SHA-256 of the HDF5 file,
and the fingerprint of the run). The HDF5 file is written first and the JSON file last, each
through a temporary file and a rename, so a generation is complete exactly when its JSON file
exists and its checksum matches. The two newest generations are kept: a newest generation
that is damaged (a full disk, a killed copy, a hand edit) leaves the one before it, and the
error says how to fall back to it. Nothing is pickled. Rank 0 reads and writes, and the outcome,
good or bad, reaches every rank, so that no rank is left waiting.
"""

import hashlib
import json
import os
import re
from pathlib import Path

import h5py
import numpy as np
from mpi4py import MPI

from pdeopt.errors import CheckpointError
from pdeopt.parallel import atomic_write_text, on_rank0

__all__ = ["OptimizerCheckpoint", "fingerprint_differences"]

_GENERATION = re.compile(r"state-(\d+)\.json$")
_KEYS = ("format", "iteration", "state", "arrays", "sha256", "fingerprint")
FORMAT = 2


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint_differences(stored, current, prefix="", rtol=1e-9) -> list[str]:
    """The entries in which two fingerprints (nested dicts of JSON values) differ, as
    ``"key: checkpoint <a>, this run <b>"``; floats agree to ``rtol`` (sums over a batch
    differ at round-off between partitions)."""
    if isinstance(stored, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(stored) | set(current)):
            out += fingerprint_differences(stored.get(key), current.get(key),
                                           f"{prefix}{key}.", rtol)
        return out
    if isinstance(stored, (list, tuple)) and isinstance(current, (list, tuple)) \
            and len(stored) == len(current):
        out = []
        for i, (a, b) in enumerate(zip(stored, current)):
            out += fingerprint_differences(a, b, f"{prefix}{i}.", rtol)
        return out
    same = stored == current
    if not same and isinstance(stored, (int, float)) and isinstance(current, (int, float)) \
            and not isinstance(stored, bool) and not isinstance(current, bool):
        same = bool(np.isclose(stored, current, rtol=rtol, atol=0.0))
    return [] if same else [f"{prefix.rstrip('.')}: checkpoint {stored!r}, this run {current!r}"]


class OptimizerCheckpoint:
    """The state of an optimiser in a directory, one generation per save (module docstring).

    Parameters
    ----------
    directory
        Where the state lives (created on the first save).
    comm
        The communicator of the optimiser.
    """

    #: Generations kept.
    KEEP = 2

    def __init__(self, directory, comm=MPI.COMM_WORLD):
        self.directory, self.comm = Path(directory), comm

    def _generations(self) -> list[tuple[int, Path]]:
        """``(iteration, json path)`` of the generations on disk, newest first (rank-local)."""
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir()
                 if (m := _GENERATION.match(p.name))]
        return sorted(found, reverse=True)

    @property
    def exists(self) -> bool:
        """Whether a generation is on disk (collective)."""
        return on_rank0(lambda: bool(self._generations()), self.comm)

    def check_writable(self) -> None:
        """Raise :class:`CheckpointError` on every rank unless rank 0 can create files in the
        directory (before any work is done). Collective."""
        def probe():
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                atomic_write_text(self.directory / ".write-test", "").unlink()
            except OSError as e:
                raise CheckpointError(
                    f"cannot write checkpoints to {self.directory}: {e.strerror or e}; give "
                    f"checkpoint= a writable directory (or none)") from None
        on_rank0(probe, self.comm)

    def save(self, state: dict, arrays: dict, fingerprint: dict) -> None:
        """Write a generation: ``state`` (JSON-serialisable, with its ``iteration``),
        ``arrays`` (name → ndarray) and the run's ``fingerprint``. Collective; a failure to
        write is a :class:`CheckpointError` on every rank, the older generations intact."""
        iteration = int(state["iteration"])

        def write():
            name = f"state-{iteration:06d}"
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                h5 = self.directory / f"{name}.h5"
                tmp = h5.with_name(h5.name + ".tmp")
                with h5py.File(tmp, "w") as f:
                    for key, value in arrays.items():
                        f.create_dataset(key, data=np.asarray(value))
                os.replace(tmp, h5)
                atomic_write_text(self.directory / f"{name}.json", json.dumps(
                    {"format": FORMAT, "iteration": iteration, "state": state,
                     "arrays": h5.name, "sha256": _sha256(h5), "fingerprint": fingerprint},
                    indent=1))
                for _, old in self._generations()[self.KEEP:]:
                    old.unlink()  # the JSON first: a half-deleted generation is no generation
                    old.with_suffix(".h5").unlink(missing_ok=True)
            except OSError as e:
                raise CheckpointError(
                    f"cannot write the checkpoint of iteration {iteration} to {self.directory}: "
                    f"{e.strerror or e}; free disk space or give checkpoint= a writable "
                    f"directory. The generations already there are intact.") from None
        on_rank0(write, self.comm)

    def _read(self, path: Path):
        """``(state, arrays, fingerprint)`` of one generation, or :class:`CheckpointError`
        saying what is wrong with it (rank 0)."""
        try:
            meta = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{path} is unreadable or not JSON ({e})") from None
        missing = [k for k in _KEYS if not isinstance(meta, dict) or k not in meta]
        if missing:
            raise CheckpointError(f"{path} lacks {missing}: it is not a pdeopt checkpoint of "
                                  f"format {FORMAT}")
        h5 = path.with_name(str(meta["arrays"]))
        if not h5.is_file():
            raise CheckpointError(f"{path}'s arrays {h5.name} are missing")
        if _sha256(h5) != meta["sha256"]:
            raise CheckpointError(f"{h5} does not match its checksum in {path.name}: it is "
                                  f"truncated or altered")
        try:
            with h5py.File(h5, "r") as f:
                arrays = {key: f[key][...] for key in f}
        except OSError as e:
            raise CheckpointError(f"{h5} is not a readable HDF5 file ({e})") from None
        return meta["state"], arrays, meta["fingerprint"]

    def load(self, fingerprint: dict | None = None):
        """``(state, arrays)`` of the newest generation, on every rank. Collective.

        A missing or damaged checkpoint, or one whose fingerprint differs from ``fingerprint``
        (another problem, preconditioner or solver setting), is a :class:`CheckpointError` on
        every rank that names the file, or what differs, and the remedy.
        """
        def read():
            generations = self._generations()
            if not generations:
                raise CheckpointError(f"no checkpoint in {self.directory} (no state-*.json): "
                                      f"start without resume=True.")
            (_, newest), *older = generations
            try:
                return self._read(newest)
            except CheckpointError as damage:
                fallback = "and no earlier generation: start without resume=True"
                for iteration, path in older:
                    try:
                        self._read(path)
                    except CheckpointError:
                        continue
                    fallback = (f"the previous generation {path.name} (iteration {iteration}) "
                                f"is intact: delete {newest.name} and "
                                f"{newest.with_suffix('.h5').name} to resume from it")
                    break
                raise CheckpointError(f"the newest checkpoint is damaged: {damage}; "
                                      f"{fallback}.") from None
        state, arrays, stored = on_rank0(read, self.comm)
        if fingerprint is not None:
            differences = fingerprint_differences(stored, fingerprint)
            if differences:
                raise CheckpointError(
                    f"the checkpoint in {self.directory} belongs to another run; it differs in "
                    f"{'; '.join(differences)}. Resume with the problem and solver settings "
                    f"that wrote it, or start without resume=True (or another directory).")
        return state, arrays
