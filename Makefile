# pdeopt: `make demo` trains the digits network, `make test` runs the tests.
# Both build the toolchain first (`make env`), once per machine, outside the clone.

SHELL := /bin/bash
NP ?= 2
MEMBERS ?= $(NP)
# The toolchain directory is keyed by the compiled stack (toolchain/constraints.txt's PETSc,
# petsc4py, mpi4py and h5py pins, and PETSc's configure options); bootstrap.sh keys the
# pure-Python packages by the whole constraints file inside it.
TOOLCHAIN_KEY := $(shell grep -E '^(petsc|petsc4py|mpi4py|h5py)==' toolchain/constraints.txt \
	| cat - toolchain/petsc-configure-options | sha256sum | cut -c1-12)
PDEOPT_TOOLCHAIN ?= $(HOME)/.cache/pdeopt/toolchain-$(TOOLCHAIN_KEY)
VENV := $(PDEOPT_TOOLCHAIN)/venv
# The project's code comes from this clone; the toolchain holds only its dependencies.
RUN := source $(VENV)/bin/activate && \
	export PETSC_DIR=$$(python -c 'import petsc; print(petsc.get_petsc_dir())') PETSC_ARCH= \
	PYTHONPATH=$(CURDIR) OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 &&
MPIEXEC := mpiexec -n $(NP) --bind-to none
# OpenMPI refuses to run as root unless told; only root gets these (a sandbox or a container).
ifeq ($(shell id -u),0)
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
endif
PYTEST := python -m pytest

B5_SIZE ?= full
# all, peers (the demo's trust region and its peers only) or targets (Adam's runs only)
B5_ROWS ?= all

.PHONY: env test lint demo demos bench reproduce-optimizers reproduce-parallel \
	reproduce-analysis reproduce-calibration reproduce-calibration-large reproduce-delay docs \
	clean-results

# bootstrap.sh is idempotent: every stage already built is skipped in well under a second.
env:
	toolchain/bootstrap.sh $(PDEOPT_TOOLCHAIN)

# The parallel tests are marked parallel[2]: always two ranks, whatever NP is.
test: env
	$(RUN) export PETSC_OPTIONS="-options_left no" && $(PYTEST) -m "not parallel" tests
	$(RUN) export PETSC_OPTIONS="-options_left no" && mpiexec -n 2 --bind-to none \
		$(PYTEST) -m "parallel[2]" tests

lint: env
	$(RUN) python -m flake8 pdeopt tests benchmarks demos

# The demo's four starts two at a time, one per member of a Firedrake Ensemble
# (`make demo NP=1` trains them in turn, `NP=2 MEMBERS=1` partitions the mesh instead).
demo: env
	$(RUN) export PDEOPT_DEMO_MEMBERS=$(MEMBERS) && $(MPIEXEC) python demos/digits/digits.py

# Every demo at its full size, one process each (`make demo` runs the digits on $(NP)).
demos: env
	$(RUN) python demos/digits/digits.py
	$(RUN) python demos/surrogate/surrogate.py
	$(RUN) python demos/transport/transport.py
	$(RUN) python demos/calibration/calibration.py
	$(RUN) python demos/delay/delay.py

bench: env
	$(RUN) python benchmarks/roofline.py --json
	$(RUN) python benchmarks/derivative_cost.py --size S --json
	$(RUN) python benchmarks/derivative_cost.py --size M --json

reproduce-optimizers: env
	$(RUN) python benchmarks/optimizers.py --size $(B5_SIZE) --rows $(B5_ROWS) --resume

# Observed orders of the five schemes, the i.i.d.-controls counter-example and the transport
# demo's stability margins (about 10 minutes; resumable).
reproduce-analysis: env
	$(RUN) python benchmarks/analysis.py --resume

# B8: the digits network's (depth, T, alpha) grid, then NOMAD, Optuna, BOBYQA and random
# search on it (resumable: every evaluation is a row of results/calibration/calibration.sqlite).
reproduce-calibration: env
	$(RUN) $(MPIEXEC) python benchmarks/calibration.py

# The payoff study: NOMAD on seven variables, then the best retrained against the demo's
# configuration (about an hour on 2 cores; resumable from the same database).
reproduce-calibration-large: env
	$(RUN) $(MPIEXEC) python benchmarks/calibration.py --study large

# Delay networks (demos/delay): the integrator against jitcdde, a learned delay, a law at
# unseen delays; one process (a point is not partitioned), about a minute.
reproduce-delay: env
	$(RUN) python demos/delay/delay.py

reproduce-parallel: env
	$(RUN) mpiexec -n 2 --bind-to none python benchmarks/parallel.py --size M

# docs/benchmarks.md from whatever results/ holds (missing results are named with their command)
docs: env
	$(RUN) python benchmarks/report.py

clean-results:
	rm -rf results
