"""Every command on XENONnT (issue 19, item 4) and the data-folder rule (item 5): `fit` of every registered
parameter that acts on xenon, alone and with COHERENT; refusals of those that do not; a COHERENT-only copy given
with --data-dir still finds XENONnT's release where the search finds it."""

import json
import math
import shutil

import pytest

from cevnsfit import cli
from cevnsfit.analysis import run_fit
from cevnsfit.errors import InputError
from cevnsfit.experiments import load_experiment
from cevnsfit.io.datadir import resolve_collection
from cevnsfit.poi import check_applies, get_poi, poi_names


def _applies(name: str, experiments: dict) -> bool:
    try:
        check_applies(get_poi(name), experiments, "xenonnt")
    except InputError:
        return False
    return True


@pytest.fixture(scope="module")
def xenon_parameters(xenonnt_cache):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CEVNSFIT_CACHE", str(xenonnt_cache))
        exps = {"xenonnt": load_experiment("xenonnt")}
    return [n for n in poi_names() if _applies(n, exps)]


def test_every_parameter_acting_on_xenon_fits(xenon_parameters, xenonnt_cache, monkeypatch):
    """sin^2 theta_W, the xenon neutron radius, the nu_e and nu_mu magnetic moments, charge radii and NSI: each
    gives a finite best fit and a finite Delta chi^2 against the SM on XENONnT (coarse grid: what is tested is that
    the command works, the numbers are docs/xenonnt.md's)."""
    monkeypatch.setenv("CEVNSFIT_CACHE", str(xenonnt_cache))
    assert {"sin2_theta_w", "mu_nu.e", "mu_nu.mu"} <= set(xenon_parameters)
    assert not {"r_n.Ar", "r_n.Cs", "r_n.I"} & set(xenon_parameters)
    for name in xenon_parameters:
        doc = run_fit([name], "xenonnt", points=11)
        assert math.isfinite(doc["best_fit"][name]) and math.isfinite(doc["delta_chi2_sm"]), name


def test_fit_with_coherent_and_refusals(xenonnt_cache, monkeypatch):
    monkeypatch.setenv("CEVNSFIT_CACHE", str(xenonnt_cache))
    doc = run_fit(["sin2_theta_w"], "coherent+xenonnt", points=21)
    lo, hi = doc["intervals"]["sin2_theta_w"]["1sigma"][0]
    assert lo < doc["best_fit"]["sin2_theta_w"] < hi
    for name, dataset in (("r_n.Ar", "csi"), ("r_n.Cs", "xenonnt"), ("r_n.Ar", "xenonnt")):
        with pytest.raises(InputError, match="does not contain"):
            run_fit([name], dataset)


def test_a_coherent_only_copy_is_enough(tmp_path, capsys, xenonnt_cache, monkeypatch):
    """--data-dir COPY is the COHERENT folder only: `sm` and `limits -d xenonnt` find XENONnT's release where the
    search finds it (here shared/data beside the clone) instead of looking for it in the copy."""
    monkeypatch.setenv("CEVNSFIT_CACHE", str(xenonnt_cache))
    monkeypatch.delenv("CEVNSFIT_DATA", raising=False)
    copy = tmp_path / "coherent"
    shutil.copytree(resolve_collection("coherent"), copy, ignore=shutil.ignore_patterns("*.root", "csi2017"))
    with pytest.raises(SystemExit) as exc:
        cli.main(["sm", "--json", "--data-dir", str(copy)])
    out = capsys.readouterr()
    assert exc.value.code == 0, out.err
    assert json.loads(out.out)["xenonnt"]["observed"] == 62  # SR0+SR1+SR2, from the shared release
    with pytest.raises(SystemExit) as exc:
        cli.main(["limits", "-m", "B-L", "-d", "xenonnt", "--data-dir", str(copy), "--json"])
    assert exc.value.code == 0, capsys.readouterr().err
