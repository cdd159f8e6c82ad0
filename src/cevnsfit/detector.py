"""Parameterised detector descriptions for projections (``cevnsfit project --detector FILE.yaml``).

A detector file is YAML; every dimensional number is ``{value, unit, source}`` (the convention of parameters.yaml),
so that each number carries its citation and a wrong unit is caught.  Fields (docs/projections.md has the full
description; ``data/detectors/*.yaml`` are examples)::

    name: COH-Ar-750                   # label: optional longer name
    source: sns                        # a facility of data/projection.yaml (sns, ess)
    target: Ar                         # a compound of data/projection.yaml, or {nucleus: atoms per formula unit}
    fiducial_mass: {value: 610, unit: kg}             # kg, t or g
    baseline: {value: 28.4, unit: m}                  # m
    exposure: {value: 3, unit: years}                 # POT, GWh, or years at the facility's power
    threshold: {value: 20, unit: keVnr}               # keVnr (true recoil) or keVee (reconstructed energy)
    quenching: {model: linear, a: 0.246, b: 0.00078} # or {nucleus: model} per nucleus; models: QUENCHING_MODELS
    resolution: {stochastic: {value: 0.58, unit: keVee^0.5}}   # optional; also noise [keVee], constant [1]
    efficiency: {value: 0.9, unit: "1"}               # or {model: logistic, plateau, x0, k, offset} in keVee
    bins: {unit: keVee, edges: [5, 10, 20, 40]}       # reconstructed electron-equivalent energy bins
    signal_uncertainty: {value: 0.1, unit: "1"}       # relative normalisation uncertainty (a nuisance)
    backgrounds:                                      # per bin (events for this exposure) or a fraction of the signal
      ss: {per_bin: [..], uncertainty: {value: 0.02, unit: "1"}}
      brn: {fraction_of_signal: {value: 0.1, unit: "1"}, uncertainty: {value: 0.25, unit: "1"}}

Bad input raises :class:`InputError` with one line naming the file and the field.  Bounds, checked while parsing,
before anything is computed: at most :data:`MAX_BINS` = 200 energy bins (the response kernel and the templates grow
linearly with them: a natural-argon detector of 200 bins takes ~1.2 GB and ~25 s for ``--model``; the shipped
files have 4-8), so every per-bin list is bounded too; at most :data:`MAX_NUCLEI` target nuclei,
:data:`MAX_BACKGROUNDS` backgrounds and :data:`MAX_COEFFICIENTS` quenching coefficients; a file of at most 1 MB
without YAML anchors or aliases (:mod:`cevnsfit.io.useryaml`).  Units inside: keV for recoil and
electron-equivalent energies of the response functions, kg, m; the experiment converts to MeV where it meets the
kernel.
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import InputError, finite_float
from .experiments.common import linear_quenching_kevee, logistic_efficiency, polynomial_quenching_kevee
from .io.useryaml import load_user_yaml, read_user_text

MASS_UNITS = {"kg": 1.0, "t": 1e3, "g": 1e-3}
EXPOSURE_UNITS = ("POT", "GWh", "years")
THRESHOLD_UNITS = ("keVnr", "keVee")
FIELDS = {"name", "label", "description", "source", "target", "fiducial_mass", "baseline", "exposure", "threshold",
          "quenching", "resolution", "efficiency", "bins", "signal_uncertainty", "backgrounds", "notes"}
REQUIRED = ("name", "source", "target", "fiducial_mass", "baseline", "exposure", "threshold", "quenching", "bins",
            "signal_uncertainty")
MAX_BINS = 200  # energy bins of a detector file (see the module docstring; docs/projections.md)
MAX_NUCLEI = 10  # entries of an explicit target mapping
MAX_BACKGROUNDS = 20  # background components (each is a nuisance of the profiled cost)
MAX_COEFFICIENTS = 20  # coefficients of a polynomial quenching

_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlist, _SHOWN.maxdict = 60, 60, 8, 6


def _shown(value) -> str:
    """A short repr of a user value for an error line (a list of 10^5 numbers is not printed whole)."""
    return _SHOWN.repr(value)


def _fail(where: str, message: str):
    raise InputError(f"{where}: {message}")


def _number(where: str, key: str, value, positive: bool = False, non_negative: bool = False) -> float:
    v = finite_float(value, f"{where}: {key}")
    if positive and v <= 0:
        _fail(where, f"{key} must be positive, got {v:g}")
    if non_negative and v < 0:
        _fail(where, f"{key} must not be negative, got {v:g}")
    return v


def _quantity(where: str, doc: dict, key: str, units, **checks) -> tuple[float, str]:
    """(value, unit) of the ``{value, unit, source}`` entry ``key``; the unit must be one of ``units``."""
    entry = doc.get(key)
    if entry is None:
        _fail(where, f"field '{key}' is missing")
    if not isinstance(entry, dict) or "value" not in entry or "unit" not in entry:
        _fail(where, f"{key} must be {{value: ..., unit: ...}} (unit one of {', '.join(units)}), got {_shown(entry)}")
    unit = str(entry["unit"])
    if unit not in units:
        _fail(where, f"{key} has unit '{unit}'; use one of {', '.join(units)}")
    return _number(where, key, entry["value"], **checks), unit


# ---- quenching --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Quenching:
    """Electron-equivalent energy E_ee(T) = Q(T) T of a nuclear recoil T (keVnr -> keVee)."""

    model: str
    coefficients: tuple = ()

    def electron_equivalent_kev(self, recoil_kev: np.ndarray, z: int, a: int) -> np.ndarray:
        t = np.asarray(recoil_kev, dtype=float)
        c = self.coefficients
        if self.model == "constant":  # E_ee = q T
            return c[0] * t
        if self.model == "linear":  # Q = a + b T (COHERENT LAr-2020: LArParametersAnlA.yaml)
            return linear_quenching_kevee(t, c[0], c[1])
        if self.model == "polynomial":  # E_ee [MeVee] = sum_i c_i T^i, T in MeVnr (COHERENT CsI-2021 release form)
            return polynomial_quenching_kevee(t * 1e-3, c)
        # Lindhard et al., Mat. Fys. Medd. Dan. Vid. Selsk. 33 (1963) 10: Q = k g / (1 + k g),
        # g = 3 eps^0.15 + 0.7 eps^0.6 + eps, eps = 11.5 Z^(-7/3) T[keV]; k = 0.133 Z^(2/3) A^(-1/2) unless given
        k = c[0] if c else 0.133 * z ** (2.0 / 3.0) / math.sqrt(a)
        eps = 11.5 * z ** (-7.0 / 3.0) * np.clip(t, 0.0, None)
        g = 3.0 * eps**0.15 + 0.7 * eps**0.6 + eps
        return k * g / (1.0 + k * g) * t


QUENCHING_MODELS = {"constant": ("value",), "linear": ("a", "b"), "lindhard": (), "polynomial": ("coefficients",)}


def _quenching(where: str, doc) -> Quenching:
    if not isinstance(doc, dict) or "model" not in doc:
        _fail(where, f"quenching needs a model ({', '.join(QUENCHING_MODELS)}), got {_shown(doc)}")
    model = doc["model"]
    if model not in QUENCHING_MODELS:
        _fail(where, f"unknown quenching model '{model}'; choose one of {', '.join(QUENCHING_MODELS)}")
    if model == "polynomial":
        coeffs = doc.get("coefficients")
        if not isinstance(coeffs, list) or not coeffs:
            _fail(where, "quenching model polynomial needs a list 'coefficients' (E_ee[MeVee] = sum c_i T[MeVnr]^i)")
        if len(coeffs) > MAX_COEFFICIENTS:
            _fail(where, f"quenching coefficients: {len(coeffs)} given, at most {MAX_COEFFICIENTS} are allowed")
        return Quenching(model, tuple(_number(where, "quenching coefficient", c) for c in coeffs))
    if model == "lindhard":
        return Quenching(model, () if doc.get("k") is None else (_number(where, "quenching k", doc["k"], positive=True),))
    values = []
    for key in QUENCHING_MODELS[model]:
        if key not in doc:
            _fail(where, f"quenching model {model} needs '{key}'")
        values.append(_number(where, f"quenching {key}", doc[key], non_negative=True))
    if values[0] <= 0 or (model == "constant" and values[0] > 1):
        _fail(where, f"quenching {QUENCHING_MODELS[model][0]} must be in (0, 1], got {values[0]:g}")
    return Quenching(model, tuple(values))


# ---- efficiency and resolution ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Efficiency:
    """Acceptance of a reconstructed energy E (keVee): a constant, or a/(1 + exp(-k (E - x0))) + d clipped to [0, 1]."""

    plateau: float
    x0: float | None = None
    k: float = 0.0
    offset: float = 0.0

    def __call__(self, e_kevee: np.ndarray) -> np.ndarray:
        e = np.asarray(e_kevee, dtype=float)
        if self.x0 is None:
            return np.full_like(e, self.plateau)
        return logistic_efficiency(e, self.plateau, self.k, self.x0, self.offset, upper=1.0)


def _efficiency(where: str, doc) -> Efficiency:
    if doc is None:
        return Efficiency(1.0)
    if isinstance(doc, dict) and doc.get("model") == "logistic":
        vals = {}
        for key in ("plateau", "x0", "k"):
            if key not in doc:
                _fail(where, f"efficiency model logistic needs '{key}' (a / (1 + exp(-k (E - x0))) + offset, keVee)")
            vals[key] = _number(where, f"efficiency {key}", doc[key])
        return Efficiency(vals["plateau"], vals["x0"], vals["k"], _number(where, "efficiency offset", doc.get("offset", 0.0)))
    value, _ = _quantity(where, {"efficiency": doc}, "efficiency", ("1",), positive=True)
    if value > 1:
        _fail(where, f"efficiency must be in (0, 1], got {value:g}")
    return Efficiency(value)


@dataclass(frozen=True)
class Resolution:
    """Gaussian energy resolution sigma^2 = noise^2 + stochastic^2 E + (constant E)^2, E and sigma in keVee."""

    noise: float = 0.0
    stochastic: float = 0.0
    constant: float = 0.0

    def sigma_kevee(self, e_kevee: np.ndarray) -> np.ndarray:
        e = np.clip(np.asarray(e_kevee, dtype=float), 0.0, None)
        return np.sqrt(self.noise**2 + self.stochastic**2 * e + (self.constant * e) ** 2)


def _resolution(where: str, doc) -> Resolution:
    if doc is None:
        return Resolution()
    if not isinstance(doc, dict):
        _fail(where, f"resolution must be a mapping of noise / stochastic / constant terms, got {_shown(doc)}")
    units = {"noise": ("keVee",), "stochastic": ("keVee^0.5",), "constant": ("1",)}
    unknown = set(doc) - set(units) - {"source"}
    if unknown:
        _fail(where, f"unknown resolution term(s) {', '.join(sorted(unknown))}; use noise, stochastic, constant")
    return Resolution(**{k: _quantity(where, doc, k, u, non_negative=True)[0] for k, u in units.items() if k in doc})


# ---- backgrounds ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Background:
    """A background component: ``per_bin`` events (for the detector's exposure) or a fraction of the SM signal."""

    name: str
    uncertainty: float  # relative normalisation uncertainty (pull width)
    per_bin: tuple | None = None
    fraction_of_signal: float | None = None


def _backgrounds(where: str, doc, n_bins: int) -> tuple[Background, ...]:
    if doc is None:
        return ()
    if not isinstance(doc, dict):
        _fail(where, f"backgrounds must be a mapping name -> {{per_bin | fraction_of_signal, uncertainty}}, got {_shown(doc)}")
    if len(doc) > MAX_BACKGROUNDS:
        _fail(where, f"backgrounds: {len(doc)} components, at most {MAX_BACKGROUNDS} are allowed")
    out = []
    for name, entry in doc.items():
        w = f"{where}: background '{name}'"
        if name == "cevns" or not isinstance(entry, dict):
            _fail(where, f"background '{name}' must be a mapping (and not be called cevns)")
        sigma, _ = _quantity(w, entry, "uncertainty", ("1",), positive=True)
        if ("per_bin" in entry) == ("fraction_of_signal" in entry):
            _fail(w, "give exactly one of per_bin (events per bin) or fraction_of_signal")
        if "per_bin" in entry:
            rates = entry["per_bin"]
            if not isinstance(rates, list) or len(rates) != n_bins:
                got = f"{len(rates)} numbers" if isinstance(rates, list) else _shown(rates)
                _fail(w, f"per_bin needs one number per energy bin ({n_bins}), got {got}")
            out.append(Background(str(name), sigma, per_bin=tuple(_number(w, "per_bin", r, non_negative=True) for r in rates)))
        else:
            frac, _ = _quantity(w, entry, "fraction_of_signal", ("1",), non_negative=True)
            out.append(Background(str(name), sigma, fraction_of_signal=frac))
    return tuple(out)


# ---- the detector -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DetectorConfig:
    """A validated detector description (see the module docstring); canonical units kg, m, keV."""

    name: str
    label: str
    source: str
    target: dict  # nucleus -> atoms per formula unit (None: resolved from a compound name by the experiment)
    compound: str | None
    mass_kg: float
    baseline_m: float
    exposure: tuple  # (value, unit) with unit in EXPOSURE_UNITS
    threshold: tuple  # (value in keV, "keVnr" | "keVee")
    quenching: dict  # nucleus -> Quenching ("*" for every nucleus)
    resolution: Resolution
    efficiency: Efficiency
    edges_kevee: tuple
    signal_uncertainty: float
    backgrounds: tuple = ()
    path: str = ""
    citations: dict = field(default_factory=dict)

    def quenching_for(self, nucleus: str) -> Quenching:
        return self.quenching.get(nucleus) or self.quenching["*"]


def parse_detector(doc, where: str = "detector") -> DetectorConfig:
    """Validate a detector document (a mapping read from YAML) into a :class:`DetectorConfig`."""
    if not isinstance(doc, dict):
        _fail(where, f"a detector file is a YAML mapping, got {type(doc).__name__}")
    unknown = set(doc) - FIELDS
    if unknown:
        _fail(where, f"unknown field(s) {', '.join(sorted(map(str, unknown)))}; known: {', '.join(sorted(FIELDS))}")
    for key in REQUIRED:
        if key not in doc:
            _fail(where, f"field '{key}' is missing")
    name = str(doc["name"]).strip()
    if not name or len(name) > 100 or any(c in name for c in "/\\\n"):
        _fail(where, f"name must be a non-empty single-line word without slashes (at most 100 characters), got "
                     f"{_shown(doc['name'])}")
    mass, mass_unit = _quantity(where, doc, "fiducial_mass", tuple(MASS_UNITS), positive=True)
    baseline, _ = _quantity(where, doc, "baseline", ("m",), positive=True)
    exposure = _quantity(where, doc, "exposure", EXPOSURE_UNITS, positive=True)
    threshold = _quantity(where, doc, "threshold", THRESHOLD_UNITS, non_negative=True)
    target, compound = doc["target"], None
    if isinstance(target, str):
        compound, target = target, None
    elif isinstance(target, dict) and target:
        if len(target) > MAX_NUCLEI:
            _fail(where, f"target: {len(target)} nuclei, at most {MAX_NUCLEI} are allowed")
        target = {str(k): _number(where, f"target {k}", v, positive=True) for k, v in target.items()}
    else:
        _fail(where, f"target must be a compound name or a mapping nucleus -> atoms per formula unit, got {_shown(target)}")
    q = doc["quenching"]
    if isinstance(q, dict) and "model" not in q:
        quenching = {str(k): _quenching(f"{where}: quenching of {k}", v) for k, v in q.items()}
    else:
        quenching = {"*": _quenching(where, q)}
    bins = doc["bins"]
    if not isinstance(bins, dict) or bins.get("unit") != "keVee" or not isinstance(bins.get("edges"), list):
        _fail(where, f"bins must be {{unit: keVee, edges: [...]}}, got {_shown(bins)}")
    if len(bins["edges"]) - 1 > MAX_BINS:  # before any number is converted, let alone a kernel allocated
        _fail(where, f"bins: {len(bins['edges']) - 1} energy bins, at most {MAX_BINS} are allowed (docs/projections.md)")
    edges = tuple(_number(where, "bin edge", e, non_negative=True) for e in bins["edges"])
    if len(edges) < 2 or np.any(np.diff(edges) <= 0):
        _fail(where, "bin edges must be at least two increasing numbers (keVee)")
    signal_sigma, _ = _quantity(where, doc, "signal_uncertainty", ("1",), positive=True)
    cites = {k: v.get("source", "") for k, v in doc.items() if isinstance(v, dict) and "source" in v}
    return DetectorConfig(
        name=name, label=str(doc.get("label", name)), source=str(doc["source"]), target=target, compound=compound,
        mass_kg=mass * MASS_UNITS[mass_unit], baseline_m=baseline, exposure=exposure, threshold=threshold,
        quenching=quenching, resolution=_resolution(where, doc.get("resolution")),
        efficiency=_efficiency(where, doc.get("efficiency")), edges_kevee=edges, signal_uncertainty=signal_sigma,
        backgrounds=_backgrounds(where, doc.get("backgrounds"), len(edges) - 1), path=where, citations=cites)


def shipped_detectors() -> tuple[str, ...]:
    """Names of the detector files shipped in ``cevnsfit/data/detectors`` (without .yaml)."""
    folder = resources.files("cevnsfit.data").joinpath("detectors")
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")))


def load_detector(spec) -> DetectorConfig:
    """A detector from a YAML file path, or the name of a shipped configuration (``COH-Ar-750``)."""
    path = Path(spec)
    if not path.exists() and str(spec) in shipped_detectors():
        text = resources.files("cevnsfit.data").joinpath("detectors").joinpath(f"{spec}.yaml").read_text()
        where = f"{spec} (shipped)"
    else:
        try:
            text = read_user_text(path, "detector file")  # at most 1 MB, read before parsing
        except FileNotFoundError:
            raise InputError(f"detector file {spec} not found (shipped detectors: {', '.join(shipped_detectors())})") from None
        except OSError as exc:
            raise InputError(f"cannot read detector file {spec}: {exc}") from None
        where = str(spec)
    return parse_detector(load_user_yaml(text, where), where)  # no YAML anchors/aliases (billion laughs)
