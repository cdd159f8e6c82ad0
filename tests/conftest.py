"""Shared fixtures: the experiments are loaded once per session (their kernels take ~1 s to build)."""

import os

import pytest

from cevnsfit.experiments import load_experiment


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~20 s (run with CEVNSFIT_SLOW=1 or -m slow)")


def pytest_collection_modifyitems(config, items):
    """Slow tests have a fast deterministic counterpart in the default run; they run on request only."""
    if os.environ.get("CEVNSFIT_SLOW") == "1" or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: set CEVNSFIT_SLOW=1 or pass -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def csi():
    return load_experiment("csi")


@pytest.fixture(scope="session")
def lar():
    return load_experiment("lar")
