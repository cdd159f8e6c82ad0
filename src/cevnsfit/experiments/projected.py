"""A planned detector as an experiment: its response kernel, Asimov (SM) data and cost (``cevnsfit project``).

Built from a :class:`cevnsfit.detector.DetectorConfig` and a pi-DAR facility (:mod:`cevnsfit.sources.facilities`)
that the experiment *receives* -- the SNS is not assumed.  Response: a recoil T' of nucleus X gives the
electron-equivalent energy E_ee = Q_X(T') T'; the reconstructed energy is Gaussian about it (``resolution``), accepted
with probability eps(E) (``efficiency``) and binned in ``bins`` (keVee).  A keVnr threshold removes true recoils
below it; a keVee threshold removes reconstructed energies below it.  No timing: one time bin holding every
neutrino (docs/projections.md says what that leaves out).

The observed counts are the Asimov data set: SM CEvNS + every background at its nominal normalisation, so the
chi^2 of the SM prediction is 0 and the expected sensitivity is read off Delta chi^2 (``projection.py``).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..detector import DetectorConfig
from ..errors import InputError
from ..parameters import DEFAULT, Parameters
from ..physics.nuclei import get_nucleus
from ..response import Target
from ..sources.facilities import PionDARFacility
from ..sources.sns import SNSSource
from ..sources.sun import with_parameter_file
from ..stats.chi2 import PoissonChi2
from .common import Experiment, PhysicsOptions, gaussian_response_matrix

SUBSTEPS = 16  # reconstructed-energy sub-intervals per bin where the efficiency is evaluated (midpoint rule)


def with_projection_parameters(params: Parameters = DEFAULT) -> Parameters:
    """``params`` plus data/projection.yaml (Na and Ge nuclei, target compounds, pi-DAR facilities)."""
    return with_parameter_file(params, "projection.yaml")


def compound_atoms(compound: str, params: Parameters) -> dict[str, float]:
    """Nuclei per formula unit of a compound of data/projection.yaml; an entry that is a parameter key (natural
    argon: ``argon_isotopes.Ar36``) reads that parameter, so the abundances have one source and its overrides."""
    out = {}
    for nucleus in params["compounds"][compound]:
        value = params[f"compounds.{compound}.{nucleus}"]
        out[nucleus] = float(params[value] if isinstance(value, str) else value)
    return out


class ProjectedExperiment(Experiment):
    """A detector file made into an experiment (see the module docstring); ``observed`` is the Asimov data set."""

    section = "projection"
    collection = ""  # no data files: the detector file and the parameters say everything
    options_class = PhysicsOptions

    def __init__(self, detector: DetectorConfig, params: Parameters = DEFAULT, options: PhysicsOptions | None = None,
                 facility: PionDARFacility | None = None):
        self.detector = detector
        self.facility = facility  # None: the detector's source, from the parameters (in _load)
        super().__init__(None, params, options)

    def _parameters(self, params: Parameters) -> Parameters:
        return with_projection_parameters(params)

    def _load(self) -> None:
        d = self.detector
        self.name, self.label = d.name, d.label
        self.facility = self.facility or PionDARFacility.from_parameters(d.source, self.params)
        self.components = ("cevns", *(b.name for b in d.backgrounds))
        self._targets = self._resolve_targets()

    # ---- configuration -------------------------------------------------------------------------------------------
    def _resolve_targets(self) -> dict:
        d, p = self.detector, self.params
        per_unit = d.target
        if per_unit is None:
            compounds = p["compounds"]
            if d.compound not in compounds:
                raise InputError(f"{d.path}: unknown target compound '{d.compound}'; choose one of {', '.join(compounds)} "
                                 "or give {nucleus: atoms per formula unit}")
            per_unit = compound_atoms(d.compound, p)
        nuclei = {n: get_nucleus(n, p) for n in per_unit}
        for n in d.quenching:
            if n != "*" and n not in nuclei:
                raise InputError(f"{d.path}: quenching given for {n}, which is not a target nucleus ({', '.join(nuclei)})")
        missing = [n for n in nuclei if n not in d.quenching and "*" not in d.quenching]
        if missing:
            raise InputError(f"{d.path}: no quenching for {', '.join(missing)}")
        # grams per mole of formula units: nuclear masses + electrons (binding energies neglected, < 1e-4 relative)
        grams = sum(k * (nuclei[n].mass_mev + nuclei[n].Z * p["constants.m_e"]) / p["constants.amu"] for n, k in per_unit.items())
        units = self.detector.mass_kg * 1e3 / grams * p["constants.N_A"]
        return {n: Target(nuclei[n], units * k) for n, k in per_unit.items()}

    @property
    def pot(self) -> float:
        """Protons on target of the detector's exposure (POT, GWh x POT/GWh, or years x GWh/year x POT/GWh)."""
        value, unit = self.detector.exposure
        f = self.facility
        if unit == "POT":
            return value
        gwh = value if unit == "GWh" else value * f.gwh_per_year()
        return gwh * f.pot_per_gwh()

    @property
    def energy_edges(self) -> np.ndarray:
        return np.asarray(self.detector.edges_kevee, float)

    energy_label = "energy [keVee]"
    energy_unit = "keVee"

    @property
    def shape(self) -> tuple[int, int]:
        return self.energy_edges.size - 1, 1

    @property
    def sigmas(self) -> dict:
        return {"cevns": self.detector.signal_uncertainty, **{b.name: b.uncertainty for b in self.detector.backgrounds}}

    # ---- response (the Experiment contract) ------------------------------------------------------------------------
    def source(self) -> SNSSource:
        return self.facility.source(self.pot, self.detector.baseline_m, self.params)

    def targets(self) -> dict:
        return dict(self._targets)

    def recoil_response(self, nucleus: str, recoil_mev: np.ndarray) -> np.ndarray:
        """P(reconstructed energy in bin i, accepted | recoil T'), shape (n_bins, n_recoil)."""
        d = self.detector
        nuc = self._targets[nucleus].nucleus
        t_kev = np.asarray(recoil_mev, float) * 1e3
        e_ee = d.quenching_for(nucleus).electron_equivalent_kev(t_kev, nuc.Z, nuc.A)
        thr, kind = d.threshold
        edges = self.energy_edges
        lo_cut = thr if kind == "keVee" else -np.inf  # a keVee threshold cuts the reconstructed energy
        nodes = [np.linspace(max(lo, lo_cut), hi, SUBSTEPS + 1) if hi > max(lo, lo_cut) else None
                 for lo, hi in zip(edges[:-1], edges[1:])]
        out = gaussian_response_matrix(e_ee, d.resolution.sigma_kevee(e_ee), nodes, d.efficiency, linear=False)
        if kind == "keVnr":
            out[:, t_kev < thr] = 0.0
        out[:, t_kev <= 0] = 0.0  # no light without a recoil
        return out

    def time_fractions(self, flavour: str) -> np.ndarray:
        return np.ones(1)  # one time bin: every neutrino of the exposure

    # ---- Asimov data and cost -----------------------------------------------------------------------------------
    @cached_property
    def backgrounds(self) -> dict:
        """Background templates (n_E, 1): per-bin events, or a fraction of the SM CEvNS template (computed once,
        with the kernel: not when the detector is only checked)."""
        out = {}
        for b in self.detector.backgrounds:
            if b.per_bin is not None:
                out[b.name] = np.asarray(b.per_bin, float).reshape(self.shape)
            else:
                out[b.name] = b.fraction_of_signal * self.kernel.sm_counts()
        return out

    @cached_property
    def observed(self) -> np.ndarray:
        """The Asimov data set: SM CEvNS plus every background at its nominal normalisation."""
        return self.kernel.sm_counts() + sum(self.backgrounds.values(), np.zeros(self.shape))

    def cost(self, free_signal: bool = False) -> PoissonChi2:
        """Poisson chi^2 of the Asimov data with Gaussian pulls on every normalisation (the CsI cost's form)."""
        sig = dict(self.sigmas)
        if free_signal:
            sig["cevns"] = None
        return PoissonChi2(self.name, self.observed, self.backgrounds, sig)

    def summary(self) -> dict:
        """Exposure, target and expected counts (JSON-ready; units in the keys)."""
        d = self.detector
        sm = self.kernel.sm_counts()
        return {"name": d.name, "label": d.label, "source": self.facility.name, "fiducial_mass_kg": d.mass_kg,
                "baseline_m": d.baseline_m, "exposure": {"value": d.exposure[0], "unit": d.exposure[1]},
                "pot": self.pot, "fluence_per_flavour_per_cm2": self.source().fluence_per_cm2,
                "nuclei_in_fiducial_mass": {n: t.count for n, t in self._targets.items()},
                "threshold": {"value": d.threshold[0], "unit": d.threshold[1]},
                "bins_kevee": list(d.edges_kevee), "cevns_events": float(sm.sum()),
                "cevns_events_per_bin": sm[:, 0].tolist(),
                "background_events": {k: float(v.sum()) for k, v in self.backgrounds.items()}}

