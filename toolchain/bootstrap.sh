#!/usr/bin/env bash
# Build pdeopt's toolchain (Debian packages, PETSc, petsc4py, h5py with MPI, Firedrake, torch)
# idempotently at one fixed location per machine, outside the clone (DESIGN.md §8).
#
#   toolchain/bootstrap.sh DIR    builds into DIR (skips every stage already done)
#
# Each stage leaves a stamp file in DIR; a stage whose stamp exists is skipped, so a machine that
# has built DIR once is ready in seconds. DIR is keyed by the compiled stack's pins (PETSc,
# petsc4py, mpi4py, h5py and PETSc's configure options: see the Makefile); the pure-Python
# packages' stamp is keyed by the whole of constraints.txt, so a new Python pin installs into
# the same DIR without rebuilding PETSc.
set -euo pipefail

TC=${1:?usage: bootstrap.sh TOOLCHAIN_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
CONSTRAINTS="$HERE/constraints.txt"
mkdir -p "$TC"
LOG="$TC/bootstrap.log"
say() { printf '[pdeopt env] %s\n' "$*"; }
stage() {  # stage NAME COMMAND...: run COMMAND once, logging to $LOG, then leave a stamp
  local name=$1; shift
  [ -f "$TC/.done-$name" ] && return 0
  say "$name (log: $LOG)"
  if ! "$@" >>"$LOG" 2>&1; then
    say "stage '$name' failed; the last lines of $LOG:"; tail -n 30 "$LOG"; exit 1
  fi
  touch "$TC/.done-$name"
}

APT_PACKAGES="bison flex gfortran cmake ninja-build pkg-config zlib1g-dev patchelf \
libopenmpi-dev openmpi-bin libopenblas-dev libhdf5-openmpi-dev libptscotch-dev libmetis-dev \
libscalapack-openmpi-dev libmumps-ptscotch-dev libsuitesparse-dev libhwloc-dev"

apt_packages() {
  local missing
  missing=$(dpkg-query -W -f='${Package} ${Status}\n' $APT_PACKAGES 2>/dev/null \
            | awk '$NF == "installed" {print $1}' | sort | comm -13 - <(tr ' ' '\n' <<<"$APT_PACKAGES" | sed '/^$/d' | sort))
  [ -z "$missing" ] && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
}
# System packages are checked every time (cheap); they are not part of the stamped directory.
apt_packages >>"$LOG" 2>&1 || { say "apt-get failed; see $LOG"; tail -n 20 "$LOG"; exit 1; }

VENV="$TC/venv"
PY="$VENV/bin/python"
# PIP_CONSTRAINT (unlike -c) also binds the isolated build environments pip creates.
export PIP_CONSTRAINT="$CONSTRAINTS"
PIP=("$PY" -m pip install --quiet)
# Wheels compiled against PETSc are valid only for this toolchain's PETSC_DIR: each toolchain
# keeps its own pip cache, so no other toolchain directory can pick them up.
export PIP_CACHE_DIR="$TC/pip-cache"
PYVER=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
export PETSC_DIR="$VENV/lib/python$PYVER/site-packages/petsc" PETSC_ARCH=""

venv() {
  python3 -m venv "$VENV"
  "$PY" -m pip install --quiet --upgrade pip
  "${PIP[@]}" --upgrade setuptools wheel cython numpy pkgconfig
}

# Debian 12's hypre lacks HYPRE_INT_MAX, which PETSc 3.26 needs: PETSc is built without hypre
# (GAMG and the direct solvers cover pdeopt's needs).
petsc() {
  PETSC_CONFIGURE_OPTIONS="$(tr '\n' ' ' <"$HERE/petsc-configure-options")" \
  "${PIP[@]}" --no-build-isolation --no-binary petsc petsc
}

mpi() {
  "${PIP[@]}" mpi4py
  HDF5_MPI=ON CC=mpicc HDF5_INCLUDEDIR=/usr/include/hdf5/openmpi \
    HDF5_LIBDIR=/usr/lib/x86_64-linux-gnu/hdf5/openmpi \
    "${PIP[@]}" --no-build-isolation --no-binary h5py h5py
}

petsc4py() { "${PIP[@]}" --no-build-isolation --no-binary petsc4py petsc4py; }

PYTHON_PACKAGES="firedrake pyadjoint-ad torch scikit-learn matplotlib mpi-pytest pytest \
hypothesis flake8 optuna PyNomadBBO Py-BOBYQA jitcdde"
python_packages() { "${PIP[@]}" $PYTHON_PACKAGES; }
PYTHON_KEY=$(cat "$CONSTRAINTS" <(echo "$PYTHON_PACKAGES") | sha256sum | cut -c1-12)

stage venv venv
stage petsc petsc
stage mpi mpi
stage petsc4py petsc4py
stage "python-packages-$PYTHON_KEY" python_packages
say "ready: $VENV"
