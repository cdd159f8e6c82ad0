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


@pytest.fixture(scope="session")
def xenonnt_cache(tmp_path_factory):
    """One release cache folder (CEVNSFIT_CACHE) for every XENONnT test of the session: the first load reads the
    6 900 HDF5 files (~3 s), the others read its .npz (~0.3 s).  The cache holds every run under one key (the
    release digest), so the folder keeps a single file whoever loads first."""
    return tmp_path_factory.mktemp("xenonnt_cache")
