"""Fixtures; the shared problems are in ``problems.py`` beside this file."""

import pytest
from petsc4py import PETSc

from problems import SCHEMES


@pytest.fixture(params=SCHEMES)
def scheme(request):
    return request.param


@pytest.fixture
def petsc_option():
    """``petsc_option(name, value)`` sets a PETSc option for the test, removed afterwards."""
    names = []

    def set_option(name, value):
        PETSc.Options()[name] = value
        names.append(name)

    yield set_option
    for name in names:
        PETSc.Options().delValue(name)
