"""Parameters of interest (POI): named parameters of the CEvNS rate, registered the way flavio registers observables.

Each entry of ``cevnsfit/data/poi.yaml`` is one :class:`POI` (name, unit, SM value, physical range, default scan
range, formula and its source).  :class:`PoiPredictor` turns values of any subset of them into predicted CEvNS
counts of one experiment, through the experiment's response kernel (``response.py``); every parameter not named
stays at its SM value, so the SM values reproduce ``experiment.kernel.sm_counts()`` exactly.

How each kind enters (flavour alpha, nucleus X, recoil grid T'_k; Q_SM = g_V^p Z F_Z + g_V^n N F_N)::

    Q_alpha,X = Q_SM + sum_i d_i [c^p_i(|q|) Z F_Z + c^n_i N F_N]          (weak_charge; d_i = theta_i - theta_i,SM)
    Q^2      += sum_channels [sum_i theta_i (c^p_i Z F_Z + c^n_i N F_N)]^2   (nsi_offdiagonal: no interference)
    F_N       = F(|q|; R_n)                                                 (neutron_radius)
    dsigma/dT += (pi alpha^2/m_e^2) (1/T' - 1/E) Z^2 F_Z^2 (mu/mu_B)^2       (magnetic, incoherent)

* sin^2 theta_W: c^p = -2 (tree-level derivative of 1/2 - 2 s^2), c^n = 0.
* NSI eps^q_aa: (c^p, c^n) = (2, 1) for q = u, (1, 2) for q = d (quark content uud, udd; physics spec 10.1).
* charge radius <r^2> [1e-32 cm^2]: c^p = -(sqrt2 pi alpha / 3 G_F) 1e-32 / (hbar c)^2 (Giunti & Studenikin, RMP 87
  (2015) 531); the SM radii are already inside the radiatively corrected g_V^p (physics spec 4), hence the shift.
  The transition radii <r^2_ab> (a != b) use the same c^p in an off-diagonal amplitude (nsi_offdiagonal kind).
* millicharge q_nu [e]: c^p = +(2 sqrt2 pi alpha / G_F) / |q|^2 (same references).

The counts are therefore a quadratic polynomial in the linear parameters (weak_charge, nsi_offdiagonal) and in
mu for the magnetic ones, with coefficients -- templates -- that depend on the neutron radii only.  Templates are
one matrix product each (the "quadratic template trick" of the mediators, ``templates.py``); they are built per
nucleus for every distinct radius value, so a 2-D scan in (R_n, sin^2 theta_W) costs one contraction per R_n.

Magnetic moment: the vector kernel V holds int dE phi(E) (1 - M T/2E^2) at each T' (moments m_0 - M T m_-2/2); the
magnetic term needs int dE phi(E) (1/T' - 1/E) = m_0/T' - m_-1.  Both are functions of T' alone once the spectrum
is integrated, so the magnetic term could be written as an effective Q^2(T') = ratio x V -- but the ratio is
0/0 at the kinematic end point.  It is therefore carried *exactly* by a second contraction of the same detector
response with the magnetic spectral weight (:meth:`PoiPredictor._magnetic_kernel`).  The node T' = 0 (1/T'
divergence) has zero detector response (no light); it is dropped.  Not included: the recoil term T/(4E^2) of
some nuclear versions of the formula (relative size (T/2E)^2 < 1e-6 here) and nu-e scattering (physics spec 10.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .errors import InputError, finite_float
from .parameters import DEFAULT, Parameters, package_yaml
from .physics.cross_section import min_energy_mev, sm_couplings
from .physics.flavours import FLAVOURS, flavours_of, lepton
from .physics.form_factors import form_factor

__all__ = ["POI", "PoiPredictor", "registry", "poi_names", "get_poi"]

KINDS = ("weak_charge", "neutron_radius", "magnetic", "nsi_offdiagonal")  # of data/poi.yaml; also "mediator",
# "nuisance" (a cost's nuisance as a parameter: nuisance_poi)
LINEAR_KINDS = ("weak_charge", "nsi_offdiagonal", "magnetic", "mediator")
QUARK_CONTENT = {"u": (2.0, 1.0), "d": (1.0, 2.0)}  # (proton, neutron) = (uud, udd)
MU_UNIT = 1e-10  # magnetic moments in units of 1e-10 mu_B
R2_UNIT_CM2 = 1e-32  # charge radii in 1e-32 cm^2
RADIUS_BLOCK = 8  # neutron radii per template build (benchmarks/bench_fit.py)


@dataclass(frozen=True)
class POI:
    """One registered parameter of interest (see ``data/poi.yaml``)."""

    name: str
    label: str
    unit: str
    sm: float
    low: float | None
    high: float | None
    open_ends: tuple
    scan: tuple
    kind: str
    formula: str
    source: str
    flavours: tuple = FLAVOURS
    nuclei: tuple = ()
    quark: str | None = None
    proton: str | None = None  # "charge_radius" | "millicharge" for |q|-dependent or unit-converted shifts
    sm_source: str = ""
    sm_exact: bool = True  # False: the SM value does not reproduce the default prediction exactly (r_n.CsI)
    model: object = None  # kind "mediator": the vector model and its mass (MeV)
    mass_mev: float = 0.0
    experiment: str | None = None  # kind "nuisance": the experiment whose cost has it, and its name there
    nuisance: str | None = None

    def check(self, value) -> float:
        """``value`` as a float inside the physical range (InputError otherwise)."""
        v = finite_float(value, self.name)
        lo_open, hi_open = "low" in self.open_ends, "high" in self.open_ends
        if self.low is not None and (v < self.low or (lo_open and v == self.low)):
            raise InputError(f"{self.name} = {v:g} is outside its physical range {self.range_text()}")
        if self.high is not None and (v > self.high or (hi_open and v == self.high)):
            raise InputError(f"{self.name} = {v:g} is outside its physical range {self.range_text()}")
        return v

    def range_text(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low is None or "low" in self.open_ends else "["
        right = ")" if self.high is None or "high" in self.open_ends else "]"
        unit = "" if self.unit == "1" else f" {self.unit}"
        return f"{left}{lo}, {hi}{right}{unit}"


@lru_cache(maxsize=1)
def _registry_tree() -> dict:
    return package_yaml("poi.yaml")


def _float_or_none(x):
    return None if x is None else float(x)


def registry(params: Parameters = DEFAULT) -> dict:
    """name -> :class:`POI`, SM values resolved against ``params``."""
    out = {}
    for name, e in _registry_tree().items():
        sm = e["sm"]
        sm_source = ""
        if isinstance(sm, str):
            sm_source = f"parameters.yaml {sm}: {params.source(sm)}"
            sm = params[sm]
        if e["kind"] not in KINDS:  # pragma: no cover - guards the shipped file
            raise InputError(f"poi.yaml: {name} has unknown kind {e['kind']!r}")
        out[name] = POI(
            name=name, label=e["label"], unit=str(e["unit"]), sm=float(sm),
            low=_float_or_none(e["physical"][0]), high=_float_or_none(e["physical"][1]),
            open_ends=tuple(e.get("open", ())), scan=tuple(float(x) for x in e["scan"]), kind=e["kind"],
            formula=e["formula"], source=e["source"],
            flavours=flavours_of(e["leptons"]) if "leptons" in e else FLAVOURS,
            nuclei=tuple(e.get("nuclei", ())), quark=e.get("quark"), proton=e.get("proton"), sm_source=sm_source,
            sm_exact=bool(e.get("sm_exact", True)),
        )
    return out


def min_radius_fm(kind: str, params: Parameters = DEFAULT) -> float:
    """Smallest rms radius the form-factor shape ``kind`` can describe (its width parameter fills the whole rms).

    Helm: R^2 > 3 s^2; symmetrized Fermi: R^2 > 7/5 (pi a)^2; Klein-Nystrand: R^2 > 6 a_k^2 (physics spec 5.1).
    A neutron-radius scan stops 1 % above it.
    """
    floor = {"helm": math.sqrt(3.0) * params["form_factor.helm_s"],
             "fermi": math.sqrt(1.4) * math.pi * params["form_factor.fermi_a"],
             "klein_nystrand": math.sqrt(6.0) * params["form_factor.kn_a"]}
    if kind not in floor:
        raise InputError(f"unknown form factor '{kind}'")
    return 1.01 * floor[kind]


def poi_names() -> tuple[str, ...]:
    """The names of the registered parameters of interest (data/poi.yaml), in registry order."""
    return tuple(_registry_tree())


def get_poi(name: str, params: Parameters = DEFAULT) -> POI:
    """The registered parameter of interest ``name`` (:class:`POI`, with its unit and SM value for ``params``);
    :class:`~cevnsfit.errors.InputError` naming the known ones otherwise."""
    reg = registry(params)
    if name not in reg:
        raise InputError(f"unknown parameter '{name}'; known: {', '.join(reg)}")
    return reg[name]


def nuisance_poi(name: str, experiments: dict, costs: dict) -> POI:
    """A nuisance of an experiment's cost as a parameter: ``<experiment>.<nuisance>`` (e.g. ``csi.norm_cevns``, the
    relative change eta of the CEvNS normalisation; ``lar.shape_cevns_f90`` and ``xenonnt.tly`` in units of their
    prior sigma).  Its SM value is the prior centre; a normalisation stays above -1 (no negative counts), a morph
    nuisance inside its grid; the default scan is the centre +- 3 prior sigma."""
    exp, _, local = name.partition(".")
    if exp not in costs or local not in costs[exp].parameters:
        known = ", ".join(f"{e}.{p}" for e, c in costs.items() for p in c.parameters)
        raise InputError(f"unknown nuisance '{name}'; the data set's nuisances are {known}")
    centre, sigma = costs[exp].priors[local]
    width = sigma if sigma else 1.0
    low, high, open_ends = None, None, ()
    if local.startswith("norm_"):
        low, open_ends = -1.0, ("low",)
    morph = getattr(costs[exp], "morph", None)
    if local in getattr(costs[exp], "shape_names", ()) and morph is not None:
        axis = (morph.x, morph.y)[costs[exp].shape_names.index(local)].nodes
        low, high = float(axis[0]), float(axis[-1])
    lo = centre - 3 * width if low is None else max(low, centre - 3 * width)
    hi = centre + 3 * width if high is None else min(high, centre + 3 * width)
    unit = "1" if local.startswith("norm_") else "sigma"
    return POI(name=name, label=name, unit=unit, sm=float(centre), low=low, high=high, open_ends=open_ends,
               scan=(lo, hi), kind="nuisance", formula="held at the value with its prior term (cost.fix)",
               source=f"prior of {exp}'s cost: centre {centre:g}, sigma {sigma if sigma is not None else 'free'}",
               experiment=exp, nuisance=local)


def check_applies(p: POI, experiments: dict, dataset: str) -> None:
    """InputError unless ``p`` acts on at least one of ``experiments``: a neutron radius on a nucleus one of them
    contains, a flavour-dependent parameter on a flavour one of their sources emits (r_n.Ar on CsI, mu_nu.e on a
    source without nu_e or nu_e-bar: refused, instead of a flat Delta chi^2 = 0)."""
    if p.kind == "neutron_radius":
        present = {n for e in experiments.values() for n in e.targets()}
        if not set(p.nuclei) & present:
            raise InputError(f"{p.name} sets the neutron radius of {', '.join(p.nuclei)}, which data set {dataset} "
                             f"does not contain ({', '.join(sorted(present))})")
    elif p.kind in ("weak_charge", "magnetic", "nsi_offdiagonal"):
        emitted = {f for e in experiments.values() for f in e.source().flavours}
        if not set(p.flavours) & emitted:
            raise InputError(f"{p.name} acts on {', '.join(p.flavours)}, which no source of data set {dataset} "
                             f"emits ({', '.join(sorted(emitted))})")


def mediator_poi(model, mass_mev: float) -> POI:
    """The coupling g of a vector mediator ``model`` at mass ``mass_mev`` (MeV) as a parameter of interest.

    Q -> Q + g^2 C(|q|)/(|q|^2 + M^2) (physics spec 10.2-10.3, ``physics/models.py``): linear in g^2, so it joins
    the quadratic templates with delta = g^2; M = inf is the contact limit (then the parameter is g/M in MeV^-1).
    """
    from .physics.models import VectorModel, get_model
    from .templates import check_masses, coupling_unit

    model = get_model(model)
    if not isinstance(model, VectorModel):
        raise InputError(f"model '{model.name}' is not a vector mediator: only vector models combine with the registry")
    mass = float(check_masses([mass_mev])[0])
    contact = math.isinf(mass)
    # a starting range around the CEvNS reach (|q| ~ 50 MeV): widened automatically when the 2 sigma region is open
    hi = 1e-4 if contact else 1e-3 * max(1.0, math.sqrt(mass * mass + 50.0**2) / 50.0)
    return POI(name="g", label=f"g ({model.name}, M = {mass:g} MeV)", unit=coupling_unit(mass), sm=0.0,
               low=0.0, high=4.0 * math.pi, open_ends=(), scan=(0.0, hi), kind="mediator",
               formula="Q -> Q + g^2 C(|q|) / (|q|^2 + M^2), delta = g^2", source="AC22 (physics spec 10.2, 10.3)",
               flavours=FLAVOURS, model=model, mass_mev=mass)


def check_names(names) -> tuple[str, ...]:
    names = tuple(names)
    if not names:
        raise InputError("name at least one parameter (--param NAME)")
    if len(set(names)) != len(names):
        raise InputError(f"parameter named twice: {', '.join(names)}")
    for n in names:
        get_poi(n)
    radius_nuclei = [x for n in names for x in get_poi(n).nuclei]
    if len(set(radius_nuclei)) != len(radius_nuclei):
        raise InputError(f"{', '.join(names)}: two parameters set the same neutron radius (r_n.CsI is r_n.Cs = r_n.I)")
    return names


# ---------------------------------------------------------------------------------------------------------------
# Coefficients of the weak-charge shifts
# ---------------------------------------------------------------------------------------------------------------


def proton_neutron_coefficients(p: POI, q_mev: np.ndarray, params: Parameters = DEFAULT) -> tuple[np.ndarray, float]:
    """(c^p(|q|), c^n) of a linear parameter: Q shifts by value * (c^p Z F_Z + c^n N F_N) (module docstring)."""
    if p.quark is not None:
        cp, cn = QUARK_CONTENT[p.quark]
        return np.full_like(q_mev, cp, dtype=float), cn
    if p.name == "sin2_theta_w":
        return np.full_like(q_mev, -2.0, dtype=float), 0.0
    alpha, g_f = params["constants.alpha"], params["constants.G_F"]
    if p.proton == "charge_radius":
        k = math.sqrt(2.0) * math.pi * alpha / (3.0 * g_f) * R2_UNIT_CM2 / params["constants.hbar_c2_cm2"]
        return np.full_like(q_mev, -k, dtype=float), 0.0
    if p.proton == "millicharge":
        q2 = np.asarray(q_mev, float) ** 2
        # |q| = 0 only at the T' = 0 node, whose detector response is zero: drop the 1/0 there
        inv = np.divide(1.0, q2, out=np.zeros_like(q2), where=q2 > 0)
        return 2.0 * math.sqrt(2.0) * math.pi * alpha / g_f * inv, 0.0
    raise InputError(f"{p.name} does not enter the weak charge linearly")  # pragma: no cover


def _channels_key(lin, flavour: str) -> tuple:
    return tuple(_channel(p, flavour) if p.kind == "nsi_offdiagonal" and flavour in p.flavours else "" for p in lin)


def _channel(p: POI, flavour: str) -> str:
    """Incoherent amplitude an off-diagonal parameter (NSI, transition charge radius) adds for ``flavour`` (e.g.
    'e->mu'); parameters of one flavour pair add in the same amplitude."""
    pair = p.name.rsplit(".", 1)[1]  # emu, etau, mutau (eps.u.emu, r2_nu.emu)
    a = lepton(flavour)
    other = pair.replace(a, "", 1) if pair.startswith(a) else pair[: len(pair) - len(a)]
    return f"{a}->{other}"


# ---------------------------------------------------------------------------------------------------------------
# Predictions
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _NucleusTemplates:
    """For one nucleus and one radius value: counts = t0 + sum_i v_i t1[i] + sum_{i<=j} v_i v_j t2[i, j]."""

    t0: np.ndarray
    t1: np.ndarray  # (k, n_E, n_t)
    t2: np.ndarray  # (k, k, n_E, n_t), upper triangle used, off-diagonal already doubled


@dataclass
class PoiPredictor:
    """Predicted CEvNS counts of ``experiment`` as a function of the named parameters (others at SM values)."""

    experiment: object
    names: tuple
    params: Parameters | None = None  # default: the experiment's parameters
    mediator: POI | None = None  # optional vector-mediator coupling (:func:`mediator_poi`), the last value column
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.names = check_names(self.names) if self.names or self.mediator is None else ()
        self.params = self.params or self.experiment.params
        reg = registry(self.params)
        self.pois = [reg[n] for n in self.names] + ([self.mediator] if self.mediator is not None else [])
        self.names = tuple(p.name for p in self.pois)
        self.linear = [i for i, p in enumerate(self.pois) if p.kind in LINEAR_KINDS]
        self.radius = [i for i, p in enumerate(self.pois) if p.kind == "neutron_radius"]
        self.sm = np.array([p.sm for p in self.pois])
        self._mag = None

    # ---- kernels ------------------------------------------------------------------------------------------
    def _magnetic_kernel(self) -> dict:
        """(flavour, nucleus) -> (n_E, n_recoil) counts per (mu/mu_B)^2 per unit Z^2 F_Z^2: the second contraction."""
        if self._mag is None:
            exp, p = self.experiment, self.params
            det, src = exp.kernel.detector, exp.source()
            flavours = exp.kernel.flavours
            pref = math.pi * p["constants.alpha"] ** 2 / p["constants.m_e"] ** 2 * p["constants.hbar_c2_cm2"]
            self._mag = {}
            for x, tg in det.targets.items():
                t = det.recoil_mev[x]
                e_min = min_energy_mev(t, tg.nucleus.mass_mev)
                inv_t = np.divide(1.0, t, out=np.zeros_like(t), where=t > 0)
                for f in flavours:
                    spec = src.spectra[f]
                    weight = np.clip(spec.moment(0, e_min) * inv_t - spec.moment(-1, e_min), 0.0, None)
                    weight[t <= 0] = 0.0
                    self._mag[(f, x)] = det.energy[x] * (tg.count * src.fluence_per_cm2 * pref * weight)
        return self._mag

    def _radius_of(self, nucleus: str, values: np.ndarray) -> float | None:
        for i in self.radius:
            if nucleus in self.pois[i].nuclei:
                return float(values[i])
        return None

    def _templates(self, nucleus: str, r_n: float | None) -> _NucleusTemplates:
        """Templates at one radius (None: the experiment's own), cached."""
        key = (nucleus, r_n)
        if key not in self._cache:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = self._build(nucleus, None if r_n is None else np.array([r_n]))[0]
        return self._cache[key]

    def _build(self, nucleus: str, radii: np.ndarray | None) -> list[_NucleusTemplates]:
        """Templates for every radius of ``radii`` at once (one matrix product per flavour for all of them)."""
        exp, kernel = self.experiment, self.experiment.kernel
        nuc = kernel.detector.targets[nucleus].nucleus
        q, fz, fn0 = kernel.form_factors[nucleus]
        if radii is None:
            fn = fn0[:, None]
        else:
            fn = np.stack([form_factor(q, float(r), exp.options.form_factor, self.params) for r in radii], axis=1)
        n_r = fn.shape[1]
        z_f, n_f = (nuc.Z * fz)[:, None], nuc.N * fn  # (n_recoil, 1), (n_recoil, n_r)
        lin = [self.pois[i] for i in self.linear]
        k = len(lin)
        n_e, n_t = exp.shape
        time = kernel.detector.time
        t0 = np.zeros((n_r, n_e, n_t))
        t1 = np.zeros((n_r, k, n_e, n_t))
        t2 = np.zeros((n_r, k, k, n_e, n_t))
        gv = sm_couplings(exp.options.couplings, self.params)
        built: dict = {}  # nu_mu and nu_mu-bar share couplings and parameters: build their columns once
        for f in kernel.flavours:
            key = (gv[f], tuple(a for a, p in enumerate(lin) if f in p.flavours), _channels_key(lin, f))
            if key not in built:
                built[key] = self._columns(f, gv[f], lin, q, z_f, n_f, kernel.sm_charge[(f, nucleus)] if radii is None else None)
            cols, slots = built[key]
            e = kernel.vector[(f, nucleus)] @ cols  # (n_E, n_cols * n_r)
            e = e.reshape(n_e, len(slots), n_r)
            tf = time[f]
            for c, slot in enumerate(slots):
                block = np.einsum("er,t->ret", e[:, c, :], tf)
                if slot[0] == "t0":
                    t0 += block
                elif slot[0] == "t1":
                    t1[:, slot[1]] += block
                else:
                    t2[:, slot[1], slot[2]] += block
            for a, p in enumerate(lin):
                if p.kind == "magnetic" and f in p.flavours:
                    # independent of R_n: F_Z only
                    mag = self._magnetic_kernel()[(f, nucleus)] @ (z_f[:, 0] ** 2)
                    t2[:, a, a] += np.outer(mag * MU_UNIT**2, tf)[None]
        return [_NucleusTemplates(t0[r], t1[r], t2[r]) for r in range(n_r)]

    def _columns(self, f, gv, lin, q, z_f, n_f, q_sm):
        """Recoil-grid columns [Q0^2, 2 Q0 c_a, c_a c_b (+ incoherent)] for flavour f, all radii side by side."""
        k = len(lin)
        # SM charge g_V^p Z F_Z + g_V^n N F_N with these neutron radii (the kernel's own at the default radius)
        q0 = q_sm[:, None] if q_sm is not None else gv[0] * z_f + gv[1] * n_f
        coh: dict = {}
        incoh: dict = {}
        for a, p in enumerate(lin):
            if f not in p.flavours or p.kind == "magnetic":
                continue
            if p.kind == "mediator":
                coh[a] = self._mediator_shift(p, f, q, z_f, n_f)
                continue
            cp, cn = proton_neutron_coefficients(p, q, self.params)
            amp = cp[:, None] * z_f + cn * n_f  # (n_recoil, n_r)
            if p.kind == "weak_charge":
                coh[a] = amp
            else:
                incoh.setdefault(_channel(p, f), {})[a] = amp
        cols, slots = [q0 * q0], [("t0",)]
        for a, amp in coh.items():
            cols.append(2.0 * q0 * amp)
            slots.append(("t1", a))
        for a in range(k):
            for b in range(a, k):
                prod = coh[a] * coh[b] if (a in coh and b in coh) else 0.0
                for amps in incoh.values():
                    if a in amps and b in amps:
                        prod = prod + amps[a] * amps[b]
                if np.ndim(prod):
                    cols.append(prod if a == b else 2.0 * prod)
                    slots.append(("t2", a, b))
        return np.concatenate(cols, axis=1), slots

    def _mediator_shift(self, p: POI, f: str, q, z_f, n_f) -> np.ndarray:
        """C(|q|)/(|q|^2 + M^2) per g^2 on the recoil grid for every radius column (models.vector_shift_numerator,
        called with Z = N = 1 and the form factors already multiplied by Z and N)."""
        from .physics.models import vector_shift_numerator
        from .templates import _propagators

        c = vector_shift_numerator(p.model, f, q[:, None], 1.0, 1.0, z_f, n_f, self.params)
        prop = _propagators(q * q, np.array([p.mass_mev]))  # (n_recoil, 1)
        return np.broadcast_to(c * prop, np.broadcast_shapes(c.shape, n_f.shape))

    # ---- counts -------------------------------------------------------------------------------------------
    def check(self, values) -> np.ndarray:
        """(n, k) array of parameter values, each checked against its physical range."""
        v = np.atleast_2d(np.asarray(values, dtype=float))
        if v.shape[-1] != len(self.pois):
            raise InputError(f"expected values of {len(self.pois)} parameters ({', '.join(self.names)}), got shape {v.shape}")
        for j, p in enumerate(self.pois):
            for x in np.unique(v[:, j]):
                p.check(x)
        return v

    def counts(self, values) -> np.ndarray:
        """Analysis CEvNS template(s): one point (k,) -> (n_E, n_t); a batch (n, k) -> (n, n_E, n_t)."""
        single = np.ndim(values) == 1
        v = self.check(values)
        d = v.copy()
        d[:, self.linear] -= self.sm[self.linear]
        for i, p in enumerate(self.pois):
            if p.kind == "mediator":
                d[:, i] = v[:, i] ** 2  # the weak charge is linear in g^2
        dl = d[:, self.linear]
        n = v.shape[0]
        total = np.zeros((n, *self.experiment.shape))
        for x in self.experiment.kernel.detector.targets:
            radius_cols = [i for i in self.radius if x in self.pois[i].nuclei]
            if radius_cols:
                r = v[:, radius_cols[0]]
                uniq, inv = np.unique(r, return_inverse=True)
                missing = [u for u in uniq if (x, float(u)) not in self._cache]
                if len(self._cache) + len(missing) > 4096:
                    self._cache.clear()
                # a few radii per matrix product: wider blocks leave the CPU cache and get slower per radius
                for c in range(0, len(missing), RADIUS_BLOCK):
                    chunk = missing[c:c + RADIUS_BLOCK]
                    for u, t in zip(chunk, self._build(x, np.array(chunk, dtype=float))):
                        self._cache[(x, float(u))] = t
                for u_i, r_val in enumerate(uniq):
                    sel = inv == u_i
                    total[sel] += _evaluate(self._templates(x, float(r_val)), dl[sel])
            else:
                total += _evaluate(self._templates(x, None), dl)
        out = self.experiment.signal(total)
        return out[0] if single else out


def _evaluate(t: _NucleusTemplates, d: np.ndarray) -> np.ndarray:
    """t0 + d_i t1_i + d_i d_j t2_ij for a batch d (n, k) -> (n, n_E, n_t)."""
    n, k = d.shape
    out = np.broadcast_to(t.t0, (n, *t.t0.shape)).copy()
    if k:
        out += np.einsum("na,aet->net", d, t.t1)
        out += np.einsum("na,nb,abet->net", d, d, t.t2)
    return out
