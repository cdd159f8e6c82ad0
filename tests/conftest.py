"""Shared fixtures: the experiments are loaded once per session (their kernels take ~1 s to build)."""

from cevnsfit.process import one_blas_thread

one_blas_thread()  # before numpy is imported: the tests do the command line's work in-process, with its threading

import pytest  # noqa: E402

from cevnsfit.experiments import load_experiment  # noqa: E402


def pytest_configure(config):
    # the full suite (CI, the README's command) runs every test; `pytest -m "not slow"` is the fast lane
    config.addinivalue_line("markers", "slow: takes more than ~20 s; deselect with -m 'not slow' (fast lane)")


@pytest.fixture(scope="session")
def csi():
    return load_experiment("csi")


@pytest.fixture(scope="session")
def lar():
    return load_experiment("lar")
