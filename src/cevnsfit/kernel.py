"""The response kernel: where physics (cross sections, a source) meets an experiment (detector, binning).

An experiment's target, source and responses give a :class:`DetectorResponse` (:func:`detector_response`):

* for every target nucleus X a recoil grid T'_k (MeV) and a matrix ``energy[X][i, k]`` = probability that a recoil
  T'_k is reconstructed in energy bin i and accepted, *times the quadrature weight* of T'_k (MeV);
* for every flavour alpha the fraction ``time[alpha][j]`` of its neutrinos arriving (and accepted) in time bin j.

:class:`ResponseKernel` folds the source into it.  For every flavour and nucleus the CEvNS cross section is
dsigma/dT' = (G_F^2 M/pi) kin(E, T') Q^2(T') [+ scalar term (M^2 T'/4 pi E^2) S(T')], so after integrating over
the neutrino spectrum (exact spectral moments at E_min(T')) the counts are linear in Q^2(T') and S(T')::

    N_ij = sum_alpha time[alpha]_j  sum_X ( V[alpha, X] @ Q^2_{alpha,X} + W[alpha, X] @ S_{alpha,X} )

``V`` and ``W`` ((n_energy, n_recoil) per flavour and nucleus) are the response kernel: predicted counts for any
weak charge Q^2(T') are one matrix product.  Build it once per configuration; :func:`cached_kernel` caches it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .parameters import DEFAULT, Parameters
from .physics.cross_section import (
    KINEMATICS,
    min_energy_mev,
    nuclear_form_factors,
    scalar_prefactor_cm2_per_mev,
    sm_couplings,
    vector_prefactor_cm2_per_mev,
)
from .process import usable_cores
from .sources.base import Source
from .sources.spectra import MOMENT_ORDERS
from .targets import Target


@dataclass
class DetectorResponse:
    """Detector part of the kernel (see module docstring).  Arrays: recoil grid in MeV, time fractions."""

    targets: dict  # nucleus name -> Target
    recoil_mev: dict  # nucleus name -> (n_recoil,)
    energy: dict  # nucleus name -> (n_energy, n_recoil), includes quadrature weights (MeV)
    time: dict  # flavour -> (n_time,)


@dataclass
class ResponseKernel:
    """Source-folded response: counts = sum_alpha time_alpha (x) sum_X (V @ Q^2 + W @ S)."""

    detector: DetectorResponse
    vector: dict  # (flavour, nucleus) -> (n_energy, n_recoil) counts per unit Q^2
    scalar: dict  # (flavour, nucleus) -> (n_energy, n_recoil) counts per unit S [MeV^4]
    form_factors: dict = field(default_factory=dict)  # nucleus -> (q_mev, F_Z, F_N) on the recoil grid
    sm_charge: dict = field(default_factory=dict)  # (flavour, nucleus) -> Q_SM on the recoil grid

    @property
    def flavours(self) -> tuple[str, ...]:
        """The flavours of the source (the keys of the detector's time fractions, in the source's order)."""
        return tuple(self.detector.time)

    @property
    def nuclei(self) -> tuple[str, ...]:
        return tuple(self.detector.targets)

    def energy_counts(self, charge_sq: dict, scalar: dict | None = None) -> dict:
        """Counts per energy bin for each flavour (before the time split).

        ``charge_sq[(flavour, nucleus)]`` is Q^2 on the recoil grid (arrays of shape (n_recoil,) or
        (n_recoil, n_models) for a batch); ``scalar`` likewise S in MeV^-4 (optional).
        """
        out = {}
        for f in self.flavours:
            acc = 0.0
            for x in self.nuclei:
                acc = acc + self.vector[(f, x)] @ charge_sq[(f, x)]
                if scalar is not None:
                    acc = acc + self.scalar[(f, x)] @ scalar[(f, x)]
            out[f] = acc
        return out

    def counts(self, charge_sq: dict, scalar: dict | None = None) -> np.ndarray:
        """Predicted CEvNS counts (n_energy, n_time) for the given Q^2 (and scalar S) on the recoil grids."""
        per_flavour = self.energy_counts(charge_sq, scalar)
        total = 0.0
        for f, e in per_flavour.items():
            t = self.detector.time[f]
            # a batch of models (n_energy, n_batch) gives (n_batch, n_energy, n_time)
            total = total + (np.outer(e, t) if np.ndim(e) == 1 else np.einsum("eb,t->bet", e, t))
        return np.asarray(total)

    def sm_charge_sq(self) -> dict:
        return {k: v**2 for k, v in self.sm_charge.items()}

    def sm_counts(self) -> np.ndarray:
        """Standard-Model CEvNS counts (n_energy, n_time)."""
        return self.counts(self.sm_charge_sq())

    def sm_counts_by_flavour(self) -> dict:
        per = self.energy_counts(self.sm_charge_sq())
        return {f: np.multiply.outer(e, self.detector.time[f]) for f, e in per.items()}


def response_bytes(targets: dict, source: Source, energy, step_kev: float) -> int:
    """Bytes of the float64 arrays :func:`detector_response` and :func:`build_kernel` allocate for these inputs,
    computed from the recoil grids alone (small: one vector per nucleus) before anything large exists: per nucleus
    the energy matrix and, per flavour of the source, the vector and scalar kernels, each (n_energy, n_recoil)."""
    n_energy = np.asarray(energy.edges).size - 1
    e_max, lines = source.max_energy_mev, source.line_energies_mev
    n_recoil = sum(energy.recoil_grid(t.nucleus, e_max, lines, step_kev)[0].size for t in targets.values())
    return 8 * n_energy * n_recoil * (1 + 2 * len(source.flavours))


def detector_response(targets: dict, source: Source, energy, time, step_kev: float) -> DetectorResponse:
    """The detector part of the kernel: per nucleus of ``targets`` the recoil grid that ``energy`` asks for (up to the
    end point of the source's largest energy, line end points bracketed, at most ``step_kev`` apart) and its
    weighted response; per flavour of ``source`` the time fractions of ``time``."""
    e_max, lines = source.max_energy_mev, source.line_energies_mev

    def one(name):
        nucleus = targets[name].nucleus
        t, w = energy.recoil_grid(nucleus, e_max, lines, step_kev)
        return t, energy.weighted_matrix(nucleus, t, w)

    # the nuclei's responses are independent, and nearly all of their cost is in large array functions that
    # release the GIL (CsI: the incomplete gammas of each nucleus, ~0.45 s each): in threads, the same numbers
    if len(targets) > 1:
        with ThreadPoolExecutor(min(len(targets), usable_cores()), thread_name_prefix="cevnsfit-response") as pool:
            done = dict(zip(targets, pool.map(one, targets)))
    else:
        done = {n: one(n) for n in targets}
    return DetectorResponse(dict(targets), {n: done[n][0] for n in targets}, {n: done[n][1] for n in targets},
                            {f: time.fractions(f, source) for f in source.flavours})


def build_kernel(
    detector: DetectorResponse,
    source: Source,
    form_factor: str = "helm",
    couplings: str = "radiative",
    kinematics: str = "ac22",
    params: Parameters = DEFAULT,
) -> ResponseKernel:
    """Fold the source spectra and cross-section prefactors into ``detector`` (see module docstring)."""
    if kinematics not in KINEMATICS:
        raise InputError(f"unknown kinematics '{kinematics}'; choose one of {', '.join(KINEMATICS)}")
    gv = sm_couplings(couplings, params)
    vector, scalar, ffs, q_sm = {}, {}, {}, {}
    for name, target in detector.targets.items():
        nuc = target.nucleus
        t = detector.recoil_mev[name]
        e_min = min_energy_mev(t, nuc.mass_mev)
        ffs[name] = nuclear_form_factors(nuc, t, form_factor, params)
        _, fz, fn = ffs[name]
        for f in detector.time:  # the source's flavours (nue, numu, numubar at the SNS; nue, numu, nutau solar; ...)
            spec = source.spectra[f]
            m0, m1, m2 = (spec.moment(k, e_min) for k in MOMENT_ORDERS)
            if kinematics == "ac22":
                kin = m0 - 0.5 * nuc.mass_mev * t * m2
            else:
                kin = m0 - t * m1 - (0.5 * nuc.mass_mev * t - 0.5 * t * t) * m2
            kin = np.clip(kin, 0.0, None)
            norm = target.count * source.fluence_per_cm2
            vector[(f, name)] = detector.energy[name] * (norm * vector_prefactor_cm2_per_mev(nuc.mass_mev, params) * kin)
            scalar[(f, name)] = detector.energy[name] * (norm * scalar_prefactor_cm2_per_mev(nuc.mass_mev, params) * t * m2)
            gvp, gvn = gv[f]
            q_sm[(f, name)] = gvp * nuc.Z * fz + gvn * nuc.N * fn
    return ResponseKernel(detector, vector, scalar, ffs, q_sm)
