"""Tests written for surviving mutants of experiments/xenonnt.py (tools/mutation.py; docs/validation/tests.md,
"Mutation testing")."""

import re

import pytest
import yaml

from cevnsfit.errors import DataError
from cevnsfit.experiments import load_experiment
from cevnsfit.experiments.xenonnt import sm_summary
from cevnsfit.experiments.xenonnt_release import OBSERVABLES, read_binning
from cevnsfit.io.datadir import resolve_collection


@pytest.mark.parametrize("doc", [{}, {OBSERVABLES[0]: [0.0, 1.0, 2.0]}, [1, 2]])
def test_binning_without_every_observable_is_a_data_error(tmp_path, doc):
    """A binning file that is not a mapping of every observable's edges names the observables (mutants: `or` ->
    `and` in the check, the message; the fast selection reads only the release's valid file)."""
    path = tmp_path / "binning.yaml"
    path.write_text(yaml.safe_dump(doc))
    message = f"{path}: binning must give edges for {', '.join(OBSERVABLES)}"
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        read_binning(path)


def _release():
    try:
        return resolve_collection("xenonnt_cevns")
    except Exception:  # pragma: no cover - the release is not on this machine
        return None


@pytest.mark.slow
@pytest.mark.skipif(_release() is None, reason="XENONnT release not available")
def test_flux_weighted_cross_section_in_the_summary_against_published(tmp_path, monkeypatch):
    """PRL 133 (2024) 191002: flux-weighted CEvNS cross section on Xe (1.1 +0.8/-0.5)e-39 cm^2.  The `sm` document
    gives the SM value and the measured one (signal scale x SM, with its 1-sigma interval); the measured one must lie
    within XENONnT's uncertainties, the interval must bracket it (mutant: the SM key renamed survived every test).
    Also the human-readable table of the same document and the shape-nuisance names the fit reports (mutants of
    sm_table and of the cost's names, read by no other test)."""
    monkeypatch.setenv("CEVNSFIT_CACHE", str(tmp_path))
    xe = load_experiment("xenonnt", runs=("sr0", "sr1"))
    assert xe.cost().shape_names == ("tly", "tqy")
    s = sm_summary(xe)
    sigma_sm, best = s["flux_weighted_cross_section_sm_cm2"], s["flux_weighted_cross_section_best_fit_cm2"]
    lo, hi = s["flux_weighted_cross_section_interval_1sigma_cm2"]
    assert best == pytest.approx(1.1e-39, abs=0.5e-39)  # symmetric, the smaller error (fast twin: test_xenonnt.py)
    assert lo < best < hi and 1e-40 < sigma_sm < 1e-38
    assert best / sigma_sm == pytest.approx(s["b8_flux_best_fit"] / s["b8_flux_reference"], rel=1e-12, abs=0)
    title, _, rows, _ = xe.sm_table(s)
    sigma = s["significance_sigma"]
    assert title == f"xenonnt: sr0+sr1, observed 37 events, background-only rejected at {sigma:.2f} sigma"
    assert [r[:2] for r in rows] == [["sr0", str(s["per_run"]["sr0"]["observed"])],
                                     ["sr1", str(s["per_run"]["sr1"]["observed"])], ["total", "37"]]


@pytest.mark.skipif(_release() is None, reason="XENONnT release not available")
def test_negative_entry_in_a_response_grid_template_names_the_file(monkeypatch):
    """The rg counterpart of test_xenonnt.py's NaN-in-a-mono-template test: a negative entry in one rg template
    (tly = -1, tqy = 2: an asymmetric grid point, so swapped indices name another file) is a DataError naming that
    file, while a zero entry in an earlier file (tly = tqy = -3, the first grid point) is a valid template (mutants
    of the rg key, of `stack < 0` and `<=`)."""
    import cevnsfit.experiments.xenonnt_release as xn

    real, target, zero = xn._read_fast, "rg_cevns_tly_-1.0_tqy_2.0.h5", "rg_cevns_tly_-3.0_tqy_-3.0.h5"

    def poisoned(path, out):
        real(path, out)
        if path.name.endswith(target):
            out[2, 0, 1, 1] = -1e-3
        elif path.name.endswith(zero):
            out[0, 1, 2, 0] = 0.0

    monkeypatch.setattr(xn, "_read_fast", poisoned)
    with pytest.raises(DataError, match=rf"{re.escape(target)}: template has NaN, infinite or negative entries$"):
        xn.read_run(_release(), "sr1")


@pytest.mark.skipif(_release() is None, reason="XENONnT release not available")
@pytest.mark.parametrize("livetime", [0.0, -1.0])
def test_livetime_must_be_positive(xenonnt_cache, monkeypatch, livetime):
    """A run with no exposure is refused when the experiment is built, naming the run (mutant: `lt > 0` ->
    `lt >= 0` accepted a zero livetime, which makes every prediction of the run zero)."""
    from cevnsfit.errors import InputError
    from cevnsfit.parameters import DEFAULT

    monkeypatch.setenv("CEVNSFIT_CACHE", str(xenonnt_cache))
    with pytest.raises(InputError, match="XENONnT livetime of sr1 must be positive"):
        load_experiment("xenonnt", runs=("sr0", "sr1"), params=DEFAULT.with_overrides({"xenonnt.livetime_sr1": livetime}))
