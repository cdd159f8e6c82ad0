"""Experiments declared in one file (experiments/declaration.py): the worked example of docs/examples/csi2021.yaml
gives the built-in CsI experiment's numbers, and bad declarations are one error naming the file and the key."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from cevnsfit.errors import InputError
from cevnsfit.experiments.declaration import load_declaration
from cevnsfit.physics.models import get_model
from cevnsfit.templates import build_templates

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "csi2021.yaml"


@pytest.fixture(scope="module")
def declared():
    return load_declaration(EXAMPLE)


def test_csi_declaration_equals_the_built_in_csi(declared, csi):
    """The declaration restates CsI-2021: the same data, backgrounds and kernel, hence the same chi^2 to 1e-9 for
    the Standard Model and along a light mediator's coupling line (B-L at M = 10 MeV)."""
    assert np.array_equal(declared.observed, csi.observed)
    for z in csi.components[1:]:
        np.testing.assert_allclose(declared.backgrounds[z], csi.backgrounds[z], rtol=1e-12, atol=0)
    np.testing.assert_allclose(declared.kernel.sm_counts(), csi.kernel.sm_counts(), rtol=1e-12, atol=0)
    assert declared.sigmas == csi.sigmas
    sm_d, sm_b = declared.cost()(declared.kernel.sm_counts()), csi.cost()(csi.kernel.sm_counts())
    assert sm_d == pytest.approx(sm_b, rel=1e-9, abs=0)
    model = get_model("B-L")
    g = np.array([0.0, 3e-5, 6e-5, 1.2e-4])
    chi_d = declared.cost()(build_templates(declared, model, [10.0]).counts(g, 0))
    chi_b = csi.cost()(build_templates(csi, model, [10.0]).counts(g, 0))
    np.testing.assert_allclose(chi_d, chi_b, rtol=1e-9, atol=0)
    assert chi_b[-1] > chi_b[0] + 4  # the line crosses the 2 sigma level: the comparison is not of flat numbers


def _broken(tmp_path, change: dict) -> Path:
    doc = yaml.safe_load(EXAMPLE.read_text())
    for key, value in change.items():
        *parents, last = key.split(".")
        node = doc
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(last)
        else:
            node[last] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("change, words", [
    ({"files.quenching": "csi2021/nope.txt"}, ("nope.txt",)),
    ({"source.baseline": {"value": 19.3, "unit": "furlong"}}, ("source.baseline", "unit 'furlong'")),
    ({"source.pot": -3.0e23}, ("source.pot", "bare number has no unit")),
    ({"source.pot": {"value": -3.0e23, "unit": "POT"}}, ("source.pot", "negative")),
    ({"target.mass": "csi2021.nonexistent"}, ("target.mass", "neither a number nor a known parameter key")),
    ({"response.energy.edges": {"value": [0, 8, 4], "unit": "PE"}}, ("increasing",)),
    ({"response.energy.model": "magic"}, ("response.energy.model", "unknown energy model 'magic'")),
    ({"response.time.efficiency.t0": {"value": 0.52, "unit": "kg"}}, ("response.time.efficiency.t0", "unit 'kg'")),
    ({"data.observed": {"counts": [1, 2, 3]}}, ("data.observed", "3 numbers for 9 x 11 bins")),
    ({"data.observed": {"counts": np.full((9, 11), 0.5).tolist()}}, ("data.observed", "integer counts")),
    ({"data.backgrounds.brn.reader": "unheard_of"}, ("data.backgrounds.brn", "unknown reader 'unheard_of'")),
    ({"likelihood.priors.ss": None}, ("likelihood.priors", "no prior for ss")),
    ({"likelihood": None}, ("key 'likelihood' is missing",)),
    ({"detector": "x"}, ("unknown key(s) detector",)),
])
def test_bad_declarations_name_the_file_and_the_key(tmp_path, change, words):
    path = _broken(tmp_path, change)
    with pytest.raises(Exception) as exc:
        exp = load_declaration(path)
        exp.observed, exp.backgrounds  # noqa: B018 -- readers run on first use
    assert isinstance(exc.value, (InputError,)) or "DataError" in type(exc.value).__name__
    message = str(exc.value)
    assert all(w in message for w in words), message
    assert "\n" not in message and (str(path) in message or "nope.txt" in message)


@pytest.fixture
def registries():
    """The registries as they were before the test (a declaration registered by a test is gone after it)."""
    from cevnsfit.experiments import DATA_SETS, EXPERIMENTS

    saved = dict(EXPERIMENTS), dict(DATA_SETS)
    yield
    for live, before in zip((EXPERIMENTS, DATA_SETS), saved):
        live.clear()
        live.update(before)


def test_a_declaration_is_a_data_set_of_every_command(registries):
    """`limits --dataset FILE.yaml`: the declaration is registered under its name and gives the built-in CsI's
    limits (the same chi^2 surface, so the same numbers to the root finder's precision)."""
    from cevnsfit.analysis import limits_document
    from cevnsfit.experiments import DATA_SETS, EXPERIMENTS, resolve_data_set

    declared = limits_document("B-L", dataset=str(EXAMPLE))["limits"][0]
    built_in = limits_document("B-L", dataset="csi")["limits"][0]
    assert declared["dataset"] == "csi-declared" and "csi-declared" in EXPERIMENTS and "csi-declared" in DATA_SETS
    for key in ("g_low_mass", "g_over_M_high_mass"):
        assert declared[key] == pytest.approx(built_in[key], rel=1e-6)
    assert resolve_data_set(str(EXAMPLE)) == "csi-declared"  # registering the same file again: the same name


def test_a_declaration_cannot_take_a_registered_name(tmp_path, registries):
    from cevnsfit.experiments import resolve_data_set

    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["name"] = "csi"
    path = tmp_path / "impostor.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match="already registered"):
        resolve_data_set(str(path))
    with pytest.raises(InputError, match="unknown data set 'nonesuch'"):
        resolve_data_set("nonesuch")


def test_plot_spectra_takes_a_declaration(declared, csi, tmp_path):
    """`plot spectra -e FILE.yaml` draws a declared experiment; its steady-state error bars use the declared sample's
    Poisson statistics, which for the restated CsI are exactly the built-in module's."""
    import os
    import subprocess
    import sys

    np.testing.assert_array_equal(declared.backgrounds["ss"], csi.ss_variance)
    out = tmp_path / "declared.png"
    res = subprocess.run([sys.executable, "-m", "cevnsfit.cli", "plot", "spectra", "-e", str(EXAMPLE), "--out", str(out)],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "400"})
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert f"wrote {out}" in res.stdout
    assert out.read_bytes().startswith(b"\x89PNG") and out.stat().st_size > 10_000
