# pdeopt: `make demo` trains the digits network, `make test` runs the tests.
# Both build the toolchain first (`make env`), once per machine, outside the clone.

SHELL := /bin/bash
NP ?= 2
MEMBERS ?= $(NP)
TOOLCHAIN_KEY := $(shell cat toolchain/constraints.txt toolchain/petsc-configure-options | sha256sum | cut -c1-12)
PDEOPT_TOOLCHAIN ?= $(HOME)/.cache/pdeopt/toolchain-$(TOOLCHAIN_KEY)
VENV := $(PDEOPT_TOOLCHAIN)/venv
PETSC_DIR := $(VENV)/lib/python3.11/site-packages/petsc
# The project's code comes from this clone; the toolchain holds only its dependencies.
RUN := source $(VENV)/bin/activate && export PETSC_DIR=$(PETSC_DIR) PETSC_ARCH= \
	PYTHONPATH=$(CURDIR) OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
	OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 &&
MPIEXEC := mpiexec -n $(NP) --bind-to none

B5_SIZE ?= full

.PHONY: env test test-serial test-parallel demo bench reproduce-optimizers reproduce-parallel \
	clean-results

env: $(PDEOPT_TOOLCHAIN)/.done-python-packages

$(PDEOPT_TOOLCHAIN)/.done-python-packages: toolchain/constraints.txt toolchain/petsc-configure-options
	toolchain/bootstrap.sh $(PDEOPT_TOOLCHAIN)

test: env
	$(RUN) export PETSC_OPTIONS="-options_left no" && python -m pytest -m "not parallel" tests
	$(RUN) export PETSC_OPTIONS="-options_left no" && mpiexec -n 2 --bind-to none python -m pytest -m "parallel[2]" tests

# The demo's four starts two at a time, one per member of a Firedrake Ensemble
# (`make demo NP=1` trains them in turn, `NP=2 MEMBERS=1` partitions the mesh instead).
demo: env
	$(RUN) export PDEOPT_DEMO_MEMBERS=$(MEMBERS) && $(MPIEXEC) python demos/digits/digits.py

bench: env
	$(RUN) python benchmarks/derivative_cost.py --size S --json
	$(RUN) python benchmarks/derivative_cost.py --size M --json

reproduce-optimizers: env
	$(RUN) python benchmarks/optimizers.py --size $(B5_SIZE) --resume

reproduce-parallel: env
	$(RUN) mpiexec -n 2 --bind-to none python benchmarks/parallel.py --size M

clean-results:
	rm -rf results
