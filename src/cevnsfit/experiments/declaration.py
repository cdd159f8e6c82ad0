"""Experiments declared in one YAML file: ``cevnsfit sm|fit|limits|scan|project --experiment FILE.yaml``.

A declaration names registered parts and gives their arguments; every dimensional number is ``{value, unit,
source}`` (converted to the unit the part declares, :mod:`cevnsfit.units`) or the key of a cited parameter
(``csi2021.pot``: value, unit and citation from the parameter files, overridable)::

    name: my-detector                       # one word; label, description, citation, notes: free text
    collection: reactor                     # data folder of the files below (cevnsfit.io.registry), if any
    files: {spectra: dresden2/data_release.txt}
    source: {kind: pion_dar, facility: sns, exposure: {value: 3, unit: years}, baseline: {value: 28.4, unit: m}}
    target: {composition: Ar, mass: {value: 610, unit: kg}}      # a compound, or {nucleus: per formula unit}
    response:
      energy:                               # a registered energy response with its models
        model: gaussian
        quenching: {model: linear, a: {value: 0.246, unit: "1"}, b: {value: 7.8e-4, unit: keVnr^-1}}
        resolution: {model: quadrature, stochastic: {value: 0.58, unit: keVee^0.5}}
        efficiency: {model: constant, value: {value: 0.9, unit: "1"}}
        threshold: {value: 20, unit: keVnr}
        edges: {value: [20, 40, 60], unit: keVee}
      time: {model: integrated}             # default
    data:
      observed: asimov                      # or {counts: [...]} or {reader: NAME, ...} (:mod:`.readers`)
      backgrounds:                          # per bin, a fraction of the signal, a shape, or a reader
        ss: {per_bin: [12.0, 8.0]}
    likelihood:
      kind: poisson                         # a registered likelihood kind (:mod:`.likelihoods`)
      priors: {cevns: {value: 0.1, unit: "1"}, ss: {value: 0.02, unit: "1"}}   # relative widths; free: null

A projection is a declaration with Asimov data.  A bad declaration -- an unknown or missing key, a wrong unit, a
negative exposure, non-integer counts for a Poisson likelihood, bins that do not match -- is one
:class:`~cevnsfit.errors.InputError` naming the file and the key.  Files are read with aliases and anchors refused
and at most :data:`MAX_FILE_BYTES`; at most :data:`MAX_BINS` energy bins (checked before anything is allocated).
"""

from __future__ import annotations

import reprlib
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import CevnsfitError, InputError, finite_float
from ..kernel import response_bytes
from ..io.useryaml import MAX_BYTES, load_user_yaml, read_user_text
from ..parameters import DEFAULT, Parameters
from ..responses import RESPONSES, make_response
from ..sources import SOURCES, make_source
from ..targets import compound, material_targets
from ..units import convert
from .base import Experiment, PhysicsOptions
from .likelihoods import LIKELIHOODS, GridNuisance
from .readers import read_counts, read_template

__all__ = ["MAX_BINS", "MAX_FILE_BYTES", "MAX_RESPONSE_BYTES", "read_declaration", "load_declaration", "shipped_declarations",
           "register_declaration"]

# energy bins of a declared experiment: the kernel holds (bins x ~1e4 recoil nodes) per flavour and nucleus, so memory
# grows linearly with them (a natural-argon detector of 200 bins takes ~1.2 GB and ~25 s for `project --model`)
MAX_BINS = 200
"""The most energy bins a declaration may have (memory and time grow linearly with them)."""
# bytes of the response kernel (kernel.response_bytes: bins x recoil nodes x nuclei x (1 + 2 flavours) x 8), checked
# before it is allocated: the bins alone do not bound it -- ten nuclei from Na23 to I127 with 200 bins at the SNS
# need 1.33 GB, natural argon with 200 bins 0.53 GB, the shipped detectors at most 19 MB (tests/test_projection.py)
MAX_RESPONSE_BYTES = 1_000_000_000
"""The largest response kernel a declaration may allocate [bytes] (1 GB), checked before allocation."""
MAX_FILE_BYTES = MAX_BYTES
"""The largest declaration file read [bytes] (1 MB)."""
MAX_NUCLEI = 10  # nuclei of a target composition
MAX_BACKGROUNDS = 20  # background components (each a nuisance of the profiled cost)
# the likelihood kinds a declaration takes, with the keys of their section
DECLARED_LIKELIHOODS = {"poisson": {"kind", "priors", "profile"}, "gaussian": {"kind", "priors", "sigma", "shapes", "profile"}}
MAX_GRID = 101  # values of a grid-profiled parameter (each one a cost)
SECTIONS = {"name", "label", "description", "citation", "notes", "collection", "files", "fetch", "source", "target",
            "response", "data", "likelihood", "options"}
REQUIRED = ("name", "source", "target", "response", "data", "likelihood")
NESTED = {"energy": {"quenching": "quenching", "resolution": "resolution", "efficiency": "efficiency"},
          "time": {"efficiency": "efficiency"}}


_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlist, _SHOWN.maxdict = 60, 60, 8, 6


def _shown(value) -> str:
    """A short repr of a user value for an error line (a list of 10^5 numbers is not printed whole)."""
    return _SHOWN.repr(value)


def read_declaration(spec) -> tuple[dict, str]:
    """(document, where) of a declaration file path, or of a shipped one by name (``data/experiments``)."""
    path = Path(spec)
    if not path.exists() and str(spec) in shipped_declarations():
        text = _shipped(str(spec)).read_text()
        where = f"{spec} (shipped)"
    else:
        try:
            text = read_user_text(path, "declaration")  # at most 1 MB, read before parsing
        except FileNotFoundError:
            raise InputError(f"declaration {spec} not found (shipped: {', '.join(shipped_declarations())})") from None
        except OSError as exc:
            raise InputError(f"cannot read {spec}: {exc}") from None
        where = str(spec)
    doc = load_user_yaml(text, where)  # no YAML anchors/aliases (billion laughs)
    if not isinstance(doc, dict):
        raise InputError(f"{where}: a declaration is a YAML mapping, got {type(doc).__name__}")
    return doc, where


SHIPPED_FOLDERS = ("experiments", "detectors")  # data sets with their data; planned detectors (Asimov data)


def _shipped(name: str):
    for folder in SHIPPED_FOLDERS:
        path = resources.files("cevnsfit.data").joinpath(folder).joinpath(f"{name}.yaml")
        if path.is_file():
            return path
    raise InputError(f"no shipped declaration '{name}'")


def shipped_declarations(folder: str | None = None) -> tuple[str, ...]:
    """Names of the declarations shipped in ``cevnsfit/data/experiments`` and ``data/detectors`` (or one of them),
    without .yaml."""
    names = []
    for f in (folder,) if folder else SHIPPED_FOLDERS:
        path = resources.files("cevnsfit.data").joinpath(f)
        if path.is_dir():
            names += [p.name[:-5] for p in path.iterdir() if p.name.endswith(".yaml")]
    return tuple(sorted(names))


class Context:
    """What resolving a declaration's values needs: the file (for messages), the parameters and the data files."""

    def __init__(self, where: str, params: Parameters, root: Path | None, files: dict):
        self.where, self.params, self.root, self.files = where, params, root, files

    def fail(self, key: str, message: str):
        raise InputError(f"{self.where}: {key}: {message}")

    def path(self, key: str, file_key) -> Path:
        if file_key not in self.files:
            self.fail(key, f"no file '{file_key}' under files ({', '.join(self.files) or 'none declared'})")
        if self.root is None:
            self.fail(key, "files need a collection (the data folder they are in)")
        return self.root / self.files[file_key]

    def value(self, node, key: str, unit: str | None):
        """A number (or list of numbers) in ``unit``: ``{value, unit, source}``, a parameter key, or a plain number
        where the quantity is dimensionless.  A unit ``"A | B"`` accepts either and returns (value, unit)."""
        if isinstance(node, str) and not _is_number_text(node):
            try:
                value, given = self.params[node], self.params.unit(node)
            except CevnsfitError:
                self.fail(key, f"{_shown(node)} is neither a number nor a known parameter key")
            return self._in_unit(value, given, unit, key)
        if isinstance(node, dict) and "value" in node:
            unknown = set(node) - {"value", "unit", "source"}
            if unknown:
                self.fail(key, f"unknown field(s) {', '.join(sorted(unknown))} (a quantity is {{value, unit, source}})")
            if "unit" not in node:
                self.fail(key, f"{{value, unit}} needs a unit{f' ({unit})' if unit else ''}")
            return self._in_unit(self._numbers(node["value"], key), str(node["unit"]), unit, key)
        if unit not in (None, "1") and "[x]" not in unit:
            self.fail(key, f"give {{value: ..., unit: {unit.split(' | ')[0]}}} (a bare number has no unit)")
        return self._numbers(node, key)

    def _in_unit(self, value, given: str, unit: str | None, key: str):
        if unit is None or unit in ("[x]", "1/[x]"):  # a unit set by the caller's context (the bins' unit)
            return value
        accepted = [u.strip() for u in unit.split("|")]
        if len(accepted) > 1:
            if given not in accepted:
                self.fail(key, f"unit '{given}'; use one of {', '.join(accepted)}")
            return (value, given)
        try:
            return (np.asarray(value, float) * convert(1.0, given, unit, key)).tolist() if isinstance(value, list) \
                else convert(value, given, unit, key)
        except InputError as exc:
            raise InputError(f"{self.where}: {exc}") from None

    def _numbers(self, node, key: str):
        if isinstance(node, (list, tuple)):
            return [self._numbers(x, key) for x in node]
        if isinstance(node, dict) and "file" in node:
            return read_template(self, node, key)
        try:
            return finite_float(node, key)
        except InputError as exc:
            raise InputError(f"{self.where}: {exc}") from None


def _is_number_text(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _model(ctx: Context, kind: str, node, key: str):
    """A registered ``kind`` model from ``{model: NAME, argument: value...}`` (nested models built first)."""
    if not isinstance(node, dict) or "model" not in node:
        ctx.fail(key, f"give {{model: NAME, ...}}; the {kind} models are {', '.join(RESPONSES[kind])}")
    name = node["model"]
    if name not in RESPONSES[kind]:
        ctx.fail(f"{key}.model", f"unknown {kind} model '{name}'; choose one of {', '.join(RESPONSES[kind])}")
    units = RESPONSES[kind][name].units
    args = {}
    for arg, value in node.items():
        if arg in ("model", "source", "notes"):
            continue
        sub = NESTED.get(kind, {}).get(arg)
        if sub is not None:
            per_nucleus = isinstance(value, dict) and "model" not in value
            args[arg] = ({n: _model(ctx, sub, v, f"{key}.{arg}.{n}") for n, v in value.items()} if per_nucleus
                         else _model(ctx, sub, value, f"{key}.{arg}"))
        elif isinstance(value, str) and not _is_number_text(value) and arg not in units:
            args[arg] = value  # a choice (integration: midpoint)
        else:
            args[arg] = ctx.value(value, f"{key}.{arg}", units.get(arg))
    try:
        return make_response(kind, name, **args)
    except InputError as exc:
        ctx.fail(key, str(exc))


def _source(ctx: Context, node):
    if not isinstance(node, dict) or "kind" not in node:
        ctx.fail("source", f"give {{kind: NAME, ...}}; the source kinds are {', '.join(SOURCES)}")
    kind = node["kind"]
    if kind not in SOURCES:
        ctx.fail("source.kind", f"unknown source kind '{kind}'; choose one of {', '.join(SOURCES)}")
    units = SOURCES[kind].units
    args = {}
    for arg, value in node.items():
        if arg in ("kind", "source", "notes"):
            continue
        if arg in units:
            args[arg] = ctx.value(value, f"source.{arg}", units[arg])
        elif isinstance(value, dict) and ("model" in value or not ("value" in value or "file" in value)):
            # a sub-model (pion_dar's timing): strings are choices, 'file' a key of files, the rest values
            sub = {}
            for k, v in value.items():
                if k == "file":
                    sub["path"] = ctx.path(f"source.{arg}.file", v)
                elif isinstance(v, str) and not _is_number_text(v) and "." not in v:
                    sub[k] = v
                else:
                    sub[k] = ctx.value(v, f"source.{arg}.{k}", None)
            args[arg] = sub
        else:
            args[arg] = value if isinstance(value, str) else ctx.value(value, f"source.{arg}", None)
    for arg, value in args.items():
        number = value[0] if isinstance(value, tuple) else value
        if isinstance(number, float) and number < 0:
            ctx.fail(f"source.{arg}", f"must not be negative, got {number:g}")
    try:
        return make_source(kind, ctx.params, **args)
    except InputError as exc:
        ctx.fail("source", str(exc))


def _targets(ctx: Context, node) -> dict:
    if not isinstance(node, dict) or "composition" not in node or "mass" not in node:
        ctx.fail("target", "give {composition: COMPOUND or {nucleus: per formula unit}, mass: {value, unit}}")
    comp = node["composition"]
    if isinstance(comp, dict) and len(comp) > MAX_NUCLEI:
        ctx.fail("target.composition", f"{len(comp)} nuclei, at most {MAX_NUCLEI}")
    try:
        composition = (compound(comp, ctx.params) if isinstance(comp, str)
                       else {str(n): ctx.value(k, f"target.composition.{n}", "1") for n, k in comp.items()})
    except (InputError, AttributeError) as exc:
        ctx.fail("target.composition", str(exc))
    mass = ctx.value(node["mass"], "target.mass", "kg")
    if not mass > 0:
        ctx.fail("target.mass", f"must be positive, got {mass:g} kg")
    molar = ctx.value(node["molar_mass"], "target.molar_mass", "g/mol") if "molar_mass" in node else None
    try:
        return material_targets(composition, mass, ctx.params, molar)
    except InputError as exc:
        ctx.fail("target", str(exc))


def load_declaration(spec, data_dir=None, params: Parameters = DEFAULT, options: PhysicsOptions | None = None,
                     doc: dict | None = None, where: str | None = None) -> Experiment:
    """The experiment declared by the file (or shipped name) ``spec``, or by an already read ``doc``."""
    from ..io.datadir import resolve_collection

    if doc is None:
        doc, where = read_declaration(spec)
    where = where or str(spec)
    unknown = set(doc) - SECTIONS
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; known: {', '.join(sorted(SECTIONS))}")
    for key in REQUIRED:
        if key not in doc:
            raise InputError(f"{where}: key '{key}' is missing")
    name = _name(doc, where)
    files = doc.get("files") or {}
    root = resolve_collection(doc["collection"], data_dir) if files and "collection" in doc else None
    ctx = Context(where, params, root, {str(k): str(v) for k, v in files.items()})
    response = doc["response"] if isinstance(doc["response"], dict) else ctx.fail("response", "must be a mapping")
    if "energy" not in response:
        ctx.fail("response", "needs an energy response {model: ...}")
    energy_doc = response["energy"]
    edges = energy_doc.get("edges") if isinstance(energy_doc, dict) else None
    if isinstance(edges, dict) and isinstance(edges.get("value"), list) and len(edges["value"]) > MAX_BINS + 1:
        ctx.fail("response.energy.edges", f"{len(edges['value']) - 1} energy bins, at most {MAX_BINS} (docs/projections.md)")
    energy = _model(ctx, "energy", energy_doc, "response.energy")
    time = _model(ctx, "time", response.get("time", {"model": "integrated"}), "response.time")
    ctx.energy_edges, ctx.time_edges_us = energy.edges, time.edges_us
    ctx.time_efficiency = getattr(time, "efficiency", None)
    source = _source(ctx, doc["source"])
    targets = _targets(ctx, doc["target"])
    need = response_bytes(targets, source, energy, (options or PhysicsOptions()).recoil_step_kev)
    if need > MAX_RESPONSE_BYTES:
        ctx.fail("response.energy", f"a response kernel of {need / 1e9:.2f} GB ({energy.edges.size - 1} energy bins x "
                                    f"recoil nodes x {len(targets)} nuclei x flavours), at most "
                                    f"{MAX_RESPONSE_BYTES / 1e9:g} GB (docs/projections.md)")
    shape = (energy.edges.size - 1, 1 if time.edges_us is None else time.edges_us.size - 1)
    lik_doc = doc["likelihood"] if isinstance(doc["likelihood"], dict) else ctx.fail("likelihood", "must be a mapping")
    kind = lik_doc.get("kind", "poisson")
    if kind not in DECLARED_LIKELIHOODS:
        ctx.fail("likelihood.kind", f"a declaration takes kind {' or '.join(DECLARED_LIKELIHOODS)} (known kinds: "
                                    f"{', '.join(LIKELIHOODS)})")
    unknown = set(lik_doc) - DECLARED_LIKELIHOODS[kind]
    if unknown:
        ctx.fail("likelihood", f"unknown key(s) {', '.join(sorted(map(str, unknown)))} for kind {kind}")
    data = doc["data"] if isinstance(doc["data"], dict) else ctx.fail("data", "must be a mapping")
    backgrounds = {}
    if len(data.get("backgrounds") or {}) > MAX_BACKGROUNDS:
        ctx.fail("data.backgrounds", f"{len(data['backgrounds'])} components, at most {MAX_BACKGROUNDS}")
    for bname, bnode in (data.get("backgrounds") or {}).items():
        if bname == "cevns":
            ctx.fail("data.backgrounds.cevns", "the signal is not a background")
        backgrounds[str(bname)] = read_counts(ctx, bnode, f"data.backgrounds.{bname}", shape, poisson=False)
    priors = lik_doc.get("priors") or {}
    components = ("cevns", *backgrounds)
    unknown = set(priors) - set(components)
    if unknown:
        ctx.fail("likelihood.priors", f"unknown component(s) {', '.join(sorted(unknown))}; components: {', '.join(components)}")
    missing = [z for z in components if z not in priors]
    if missing:
        ctx.fail("likelihood.priors", f"no prior for {', '.join(missing)} (a relative width, or null for free)")
    pulls = {}
    for z in components:
        width = None if priors[z] is None else ctx.value(priors[z], f"likelihood.priors.{z}", "1")
        if width is not None and not width > 0:
            ctx.fail(f"likelihood.priors.{z}", f"a prior width must be positive (null: free), got {width:g}")
        pulls[z] = width
    observed = data.get("observed", "asimov")
    observed = _asimov if observed == "asimov" else read_counts(ctx, observed, "data.observed", shape,
                                                                 poisson=kind == "poisson")
    likelihood = (LIKELIHOODS[kind](components, pulls) if kind == "poisson"
                  else _gaussian(ctx, lik_doc, components, pulls, backgrounds, shape))
    if lik_doc.get("profile") is not None:
        likelihood.grid = _grid(ctx, lik_doc["profile"], data.get("backgrounds") or {}, shape)
    exp = Experiment(name, str(doc.get("label", name)), params=params, options=options or PhysicsOptions(),
                     source=source, targets=targets, energy=energy, time=time,
                     likelihood=likelihood, observed=observed, backgrounds=backgrounds,
                     data_dir=root, files=ctx.files, collection=str(doc.get("collection", "")),
                     extras={"declaration": where, "document": doc, "citation": str(doc.get("citation", "")),
                             "asimov": data.get("observed", "asimov") == "asimov"})
    return exp


def _gaussian(ctx: Context, lik_doc: dict, components: tuple, pulls: dict, backgrounds: dict, shape: tuple):
    """A Gaussian likelihood: ``sigma`` per bin (the data's units, a table column or numbers), and ``shapes``:
    {name: {component, plus: a background, minus: a background or absent}}, each a shape systematic of unit-Gaussian
    prior whose +-1 sigma templates are the given ones (the relative deltas to the component's template)."""
    if "sigma" not in lik_doc:
        ctx.fail("likelihood.sigma", "a Gaussian likelihood needs the per-bin sigma of the data")
    sigma = read_counts(ctx, lik_doc["sigma"], "likelihood.sigma", shape, poisson=False)
    if not np.all(sigma > 0):
        ctx.fail("likelihood.sigma", "every bin's sigma must be positive")
    shapes = lik_doc.get("shapes") or {}
    if not isinstance(shapes, dict) or len(shapes) > MAX_BACKGROUNDS:
        ctx.fail("likelihood.shapes", f"a mapping of at most {MAX_BACKGROUNDS} shape systematics")
    deltas = {}
    for sname, node in shapes.items():
        key = f"likelihood.shapes.{sname}"
        if not isinstance(node, dict) or set(node) - {"component", "plus", "minus", "source"} or "plus" not in node:
            ctx.fail(key, "give {component, plus: TEMPLATE, minus: TEMPLATE (optional), source}")
        comp = node.get("component")
        if comp not in backgrounds:
            ctx.fail(f"{key}.component", f"not a background: {', '.join(backgrounds) or 'none'}")
        nominal = np.asarray(backgrounds[comp], float)
        if not np.all(nominal > 0):
            ctx.fail(f"{key}.component", "a shape systematic needs a template that is positive in every bin")
        rel = [None if node.get(side) is None else
               np.asarray(read_counts(ctx, node[side], f"{key}.{side}", shape, poisson=False)) / nominal - 1.0
               for side in ("plus", "minus")]
        deltas[str(sname)] = (comp, rel[0], rel[1])
    return LIKELIHOODS["gaussian"](components, pulls, lambda experiment: sigma, deltas)


def _grid(ctx: Context, node, background_docs: dict, shape: tuple) -> GridNuisance:
    """``profile: {component, parameter, values: {value: [...], unit, source}}``: the shape argument ``parameter``
    of the background ``component`` profiled on the grid ``values`` (:mod:`cevnsfit.stats.gridprofile`)."""
    key = "likelihood.profile"
    if not isinstance(node, dict) or set(node) - {"component", "parameter", "values", "source"}:
        ctx.fail(key, "give {component: BACKGROUND, parameter: ARGUMENT of its shape, values: {value: [...], unit}}")
    comp, arg = node.get("component"), node.get("parameter")
    bnode = background_docs.get(comp)
    if not isinstance(bnode, dict) or "shape" not in bnode:
        ctx.fail(f"{key}.component", f"not a background declared by a shape: {', '.join(background_docs) or 'none'}")
    if arg not in bnode or not isinstance(bnode[arg], dict) or "unit" not in bnode[arg]:
        ctx.fail(f"{key}.parameter", f"'{arg}' is not a {{value, unit}} argument of the {comp} shape")
    unit = str(bnode[arg]["unit"])
    values = node.get("values")
    if not isinstance(values, dict) or not isinstance(values.get("value"), list):
        ctx.fail(f"{key}.values", f"give {{value: [...], unit: {unit}}}")
    grid = np.asarray(ctx.value(values, f"{key}.values", unit), float)
    if not 3 <= grid.size <= MAX_GRID or np.any(np.diff(grid) <= 0):
        ctx.fail(f"{key}.values", f"3 to {MAX_GRID} increasing values, got {grid.size}")
    cache: dict = {}

    def template(value: float) -> np.ndarray:
        if value not in cache:
            cache[value] = read_counts(ctx, {**bnode, arg: {"value": float(value), "unit": unit}},
                                       f"data.backgrounds.{comp}", shape, poisson=False)
        return cache[value]

    for v in grid:  # every value is checked (and its template made) now, not in the middle of a fit
        template(float(v))
    return GridNuisance(f"{arg}_{comp}", str(comp), tuple(grid.tolist()), template, unit)


def _name(doc: dict, where: str) -> str:
    name = str(doc.get("name", "")).strip()
    if not name or len(name) > 100 or any(c in name for c in "/\\\n+ "):
        raise InputError(f"{where}: name: one word without slashes, '+' or spaces, at most 100 characters, got "
                         f"{_shown(doc.get('name'))}")
    return name


def register_declaration(spec, data_set: bool = True) -> str:
    """Register the experiment a declaration file (or a shipped one, by name) declares, and the one-member data set
    of the same name, so every command takes it by name as a built-in one: ``limits``, ``scan``, ``fit``, ``fc``,
    the data checks.  Returns the name.  Registering the same file again is a no-op; a name another experiment
    already holds is an :class:`~cevnsfit.errors.InputError`.  ``data_set=False``: the experiment only."""
    from .registry import DATA_SETS, EXPERIMENTS, DataSetSpec, register_data_set, register_experiment

    doc, where = read_declaration(spec)
    name = _name(doc, where)
    if name in EXPERIMENTS:
        if EXPERIMENTS[name].module == where:
            return name
        raise InputError(f"{where}: the name '{name}' is already registered (by {EXPERIMENTS[name].module})")
    if name in DATA_SETS:
        raise InputError(f"{where}: the name '{name}' is already a data set's")

    def load(data_dir=None, params: Parameters = DEFAULT, **options):
        """The declared experiment (:func:`load_declaration`)."""
        if options:
            raise InputError(f"{where}: options {', '.join(options)} apply to registered modules, not declarations")
        return load_declaration(spec, data_dir, params, doc=doc, where=where)

    load.__module__ = where  # the entry's origin, shown in messages and compared above
    label = str(doc.get("label", name))
    fetch = doc.get("fetch") or []
    try:
        register_experiment(name, label=label, collection=str(doc.get("collection", "")),
                            files={str(k): str(v) for k, v in (doc.get("files") or {}).items()},
                            fetch=tuple(str(f) for f in (fetch if isinstance(fetch, list) else [fetch])),
                            citation=str(doc.get("citation", "")))(load)
    except (ValueError, TypeError) as exc:
        raise InputError(str(exc)) from None
    if data_set:
        register_data_set(DataSetSpec(name, (name,), label, label))
    return name


def declared_summary(experiment) -> dict:
    """Exposure, target and expected counts of a declared experiment (JSON-ready; units in the keys), with the
    source's and target's declared quantities as written in the declaration."""
    doc = experiment.document
    sm = experiment.kernel.sm_counts()
    src = experiment.source()
    return {"name": experiment.name, "label": experiment.label, "declaration": experiment.declaration,
            "source": {k: v for k, v in doc["source"].items() if k != "notes"},
            "target": {k: v for k, v in doc["target"].items() if k != "notes"},
            "fluence_per_flavour_per_cm2": {f: src.fluence_per_cm2 for f in src.flavours},
            "nuclei_in_fiducial_mass": {n: t.count for n, t in experiment.targets().items()},
            f"bins_{experiment.energy.unit}": experiment.energy.edges.tolist(),
            "cevns_events": float(sm.sum()), "cevns_events_per_bin": sm.sum(axis=1).tolist(),
            "background_events": {k: float(np.sum(v)) for k, v in experiment.backgrounds.items()}}


def _asimov(experiment) -> np.ndarray:
    """The Asimov data set: SM CEvNS plus every background at its nominal normalisation."""
    return experiment.kernel.sm_counts() + sum(experiment.backgrounds.values(), np.zeros(experiment.shape))
