"""Shared fixtures: the experiments are loaded once per session (their kernels take ~1 s to build)."""

import pytest

from cevnsfit.experiments import load_experiment


def pytest_configure(config):
    # the full suite (CI, the README's command) runs every test; `pytest -m "not slow"` is the fast lane
    config.addinivalue_line("markers", "slow: takes more than ~20 s; deselect with -m 'not slow' (fast lane)")


@pytest.fixture(scope="session")
def csi():
    return load_experiment("csi")


@pytest.fixture(scope="session")
def lar():
    return load_experiment("lar")
