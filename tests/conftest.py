"""Shared fixtures: the experiments are loaded once per session (their kernels take ~1 s to build)."""

from cevnsfit.process import one_blas_thread

one_blas_thread()  # before numpy is imported: the tests do the command line's work in-process, with its threading

import pytest  # noqa: E402

from cevnsfit.experiments import load_experiment  # noqa: E402


def pytest_configure(config):
    # the full suite (CI, the README's command) runs every test; `pytest -m "not slow"` is the fast lane
    config.addinivalue_line("markers", "slow: takes more than ~20 s; deselect with -m 'not slow' (fast lane)")
    # the documentation site's build (mkdocs --strict, tutorials executed): `pytest -m site` runs it alone
    config.addinivalue_line("markers", "site: builds the documentation site (tests/test_site.py); also slow")
    # a fresh clone compiles the likelihood kernels on first use (~30 s): once here, before the xdist workers and
    # the command lines the tests run start, so that no test races a compilation or sees its one-line notice
    # (`compiling the likelihood kernels ...` on stderr, beside the one error line a fault test expects)
    if not hasattr(config, "workerinput"):
        from cevnsfit.stats import compiled

        compiled.load()


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


@pytest.fixture
def xenonnt_without_replicas(monkeypatch):
    """Every MediatorAnalysis's XENONnT cost replaced by a cost without the replica half of the contract (a plain
    BinnedCost): the data sets that hold it cannot have toys.  (Every cost of the package can throw replicas, so the
    refusal of those that cannot is tested on this stand-in.)"""
    from cevnsfit.mediators import MediatorAnalysis
    from cevnsfit.stats.chi2 import BinnedCost

    class NoReplicas(BinnedCost):
        name = "xenonnt"

        def profile(self, signal):
            raise AssertionError("a refused data set was profiled")

        def fit(self, signal):
            raise AssertionError("a refused data set was fitted")

        def _pack(self):
            pass

    real = MediatorAnalysis.cost
    monkeypatch.setattr(MediatorAnalysis, "cost", lambda self, name: NoReplicas() if name == "xenonnt" else real(self, name))
    return NoReplicas
