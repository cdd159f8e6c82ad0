"""Which published (non-CEvNS) limits apply to which of our Z' models, in our coupling convention.

Our vector coupling g multiplies the U(1)' charges Q'_f of docs/physics.md section 10.2 (AC22 = Atzori Corona et
al., JHEP 05 (2022) 109, arXiv:2202.11002).  DarkCast's "global coupling" multiplies its model charges x_f the
same way, and for ``B-L_boson`` (quarks 1/3, leptons and neutrinos -1), ``Lmu-Ltau_boson`` (mu +1, tau -1),
``Le-Lmu_boson`` (e +1, mu -1) and ``Le-Ltau_boson`` (e +1, tau -1) those charges are ours up to an overall sign,
which no limit depends on: the numbers are our g with no conversion (PROVENANCE.md check: (g-2)_mu band at 1 MeV,
g' = 3.21e-4 = e * epsilon with epsilon = 1.06e-3 from the dark_photon file).  Only exact matches are used by
default; the other models have no curves (:data:`NO_CURVES` says why).  ``approximate=True`` adds the DarkCast
B-L curves, labelled "[B-L proxy]", to the five B-type models (same quark charges 1/3; single-lepton limits divided
by that lepton's |Q'|) -- order-of-magnitude only.

Data: ``shared/data/limits`` (not copied into the package), found as described in :func:`resolve_limits_dir`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..errors import DataError, InputError
from ..io.datadir import resolve_collection
from ..parameters import DEFAULT
from .curves import LimitCurve
from .darkcast import read_lmt
from .foresee import read_foresee

ENV_VAR = "CEVNSFIT_LIMITS"
DARKCAST_DIR = Path("DS-Decay-Scripts") / "darkcast"
FORESEE_BL_DIR = Path("FORESEE") / "Models" / "U1B-L" / "model" / "lines"
MASS_RANGE_MEV = (1e-3, 1e5)  # a curve is listed only with a finite point in this range

MODEL_NAMES = (
    "universal", "B-L", "B_y+L_mu+L_tau", "B-3L_e", "B-3L_mu", "B-2L_e-L_mu", "B-L_e-2L_mu",
    "L_e-L_mu", "L_e-L_tau", "L_mu-L_tau", "scalar",
)  # fmt: skip

# (Q'_e, Q'_mu, Q'_tau) of docs/physics.md section 10.2 (AC22 charge table); None for the scalar.
LEPTON_CHARGES = {
    "universal": (1, 1, 1), "B-L": (-1, -1, -1), "B_y+L_mu+L_tau": (0, 1, 1), "B-3L_e": (-3, 0, 0),
    "B-3L_mu": (0, -3, 0), "B-2L_e-L_mu": (-2, -1, 0), "B-L_e-2L_mu": (-1, -2, 0), "L_e-L_mu": (1, -1, 0),
    "L_e-L_tau": (1, 0, -1), "L_mu-L_tau": (0, 1, -1), "scalar": None,
}  # fmt: skip

DARKCAST_RECAST = {
    "B-L": "B-L_boson",
    "L_mu-L_tau": "Lmu-Ltau_boson",
    "L_e-L_mu": "Le-Lmu_boson",
    "L_e-L_tau": "Le-Ltau_boson",
}

_NO_RECAST = "no DarkCast recast with these charges"
NO_CURVES = {
    "universal": "no DarkCast model with universal charges (dark_photon couples via e*Q_f, B_boson to baryons only)",
    "B_y+L_mu+L_tau": _NO_RECAST,
    "B-3L_e": _NO_RECAST,
    "B-3L_mu": _NO_RECAST,
    "B-2L_e-L_mu": _NO_RECAST,
    "B-L_e-2L_mu": _NO_RECAST,
    "scalar": "DarkCast and FORESEE recast vector bosons only",
}
PROXY_MODELS = ("B_y+L_mu+L_tau", "B-3L_e", "B-3L_mu", "B-2L_e-L_mu", "B-L_e-2L_mu")

_LOOP_NOTE = (
    "DarkCast adds a loop-induced, momentum-independent kinetic mixing with e and quarks to the L_i-L_j models "
    "(Amaral et al., arXiv:2006.11225, eq. 7; DarkCast notes a factor 3/2 on the quark couplings w.r.t. "
    "Bauer:2018onh).  AC22 evaluates the loop eps_ba(|q|) at the CEvNS momentum transfer instead: limits driven "
    "by the loop couplings (electron beams and nu-e scattering for Lmu-Ltau, quark-initiated production for all "
    "L_i-L_j) carry DarkCast's convention."
)
MODEL_NOTES = {
    "B-L": "",
    # DarkCast v2.1 Lmu-Ltau NA62 pi0 -> gamma Z' recast: quark coupling 0.0044 g per unit charge, = AC22's
    # 2 alpha eps_tau_mu(0)/pi = 0.00437 g within 1 % (checked on the data files); at |q| = 100 MeV AC22's is 3 % lower.
    "L_mu-L_tau": _LOOP_NOTE,
    "L_e-L_mu": _LOOP_NOTE + "  The electron loop runs strongly with |q| (docs/physics.md section 10.3).",
    "L_e-L_tau": _LOOP_NOTE + "  The electron loop runs strongly with |q| (docs/physics.md section 10.3).",
}

_DC_REF = "; recast by DarkCast v2.1 (arXiv:1801.04847)"
# DarkCast file stem -> (legend label, short citation, leptons the limit relies on).  Citations: PROVENANCE.md
# table / DarkCast's darkrefs.bib.  The lepton column (from the production/decay channels there) only filters the
# approximate B-L proxies: a proxy is dropped when the target model does not couple to a lepton it relies on.
DARKCAST_FILES = {
    "A1_Merkel2011ze": ("A1 (2011)", "Merkel:2011ze, arXiv:1101.4091", "e"),
    "A1_Merkel2014avp": ("A1 (2014)", "Merkel:2014avp, arXiv:1404.5502", "e"),
    "AMMe_Bodas2021fsy_cs": ("(g-2)_e, alpha(Cs)", "Bodas:2021fsy, arXiv:2102.07781 (3 sigma)", "e"),
    "AMMe_Bodas2021fsy_rb": ("(g-2)_e, alpha(Rb)", "Bodas:2021fsy, arXiv:2102.07781 (3 sigma)", "e"),
    "APEX_Abrahamyan2011gv": ("APEX", "Abrahamyan:2011gv, arXiv:1108.2750", "e"),
    "BESIII_Ablikim2017aab": ("BESIII", "Ablikim:2017aab, arXiv:1705.04265", "e"),
    "BaBar_Lees2014xha": ("BaBar (ee, mumu)", "Lees:2014xha, arXiv:1406.2980", "e"),
    "BaBar_Lees2017lec": ("BaBar (invisible)", "Lees:2017lec, arXiv:1702.03327", "e"),
    "BaBar_TheBABAR2016rlg": ("BaBar (4mu)", "TheBABAR:2016rlg, arXiv:1606.03501", "mu"),
    "BelleII_Adachi2019otg": ("Belle II (mumu + inv.)", "Adachi:2019otg, arXiv:1912.11276", "mu"),
    "Borexino_Bauer2018onh": ("Borexino (nu-e)", "Bauer:2018onh, arXiv:1803.05466", "e"),
    "CHARMII_Bauer2018onh": ("CHARM-II (nu-e)", "Bauer:2018onh, arXiv:1803.05466", "e+mu"),
    "CHARM_Bergsma1985qz": ("CHARM", "Bergsma:1985qz, Phys. Lett. 157B (1985) 458", "e"),
    "CHARM_Tsai2019mtm": ("CHARM (Tsai 2019)", "Tsai:2019mtm, arXiv:1908.07525", "e"),
    "CMS_CMS2019kiy": ("CMS", "CMS:2019kiy (CMS 2019, no arXiv number in DarkCast)", "mu"),
    "E137_Andreas2012mt": ("E137 (2012)", "Andreas:2012mt, arXiv:1209.6083", "e"),
    "E137_Bjorken2009mm": ("E137 (2009)", "Bjorken:2009mm, arXiv:0906.0580", "e"),
    "E141_Riordan1987aw": ("E141", "Riordan:1987aw, Phys. Rev. Lett. 59 (1987) 755", "e"),
    "E774_Bross1989mp": ("E774", "Bross:1989mp, Phys. Rev. Lett. 67 (1991) 2942", "e"),
    "FASER_Petersen2023hgm": ("FASER", "Petersen:2023hgm, arXiv:2305.08665", "e"),
    "HPS_Adrian2018scb": ("HPS", "Adrian:2018scb, arXiv:1807.11530", "e"),
    "KEK_Konaka1986cb": ("KEK", "Konaka:1986cb, Phys. Rev. Lett. 57 (1986) 659", "e"),
    "KLOE_Anastasi2015qla": ("KLOE (2015, ee)", "Anastasi:2015qla, arXiv:1509.00740", "e"),
    "KLOE_Anastasi2016ktq": ("KLOE (2016, pipi)", "Anastasi:2016ktq, arXiv:1603.06086", "e"),
    "KLOE_Anastasi2018azp_combined": ("KLOE (2018, combined)", "Anastasi:2018azp, arXiv:1807.02691", "e"),
    "KLOE_Anastasi2018azp_mumu": ("KLOE (2018, mumu)", "Anastasi:2018azp, arXiv:1807.02691", "e+mu"),
    "KLOE_Babusci2012cr": ("KLOE (2012, phi decays)", "Babusci:2012cr, arXiv:1210.3927", "e"),
    "KLOE_Babusci2014sta": ("KLOE (2014, mumu)", "Babusci:2014sta, arXiv:1404.7772", "e+mu"),
    "LEP_Fox2011fx": ("LEP (invisible)", "Fox:2011fx, arXiv:1103.0240", "e"),
    "LHCb_Aaij2017rft_displaced": ("LHCb (2017, displaced)", "Aaij:2017rft, arXiv:1710.02867", "mu"),
    "LHCb_Aaij2017rft_prompt": ("LHCb (2017, prompt)", "Aaij:2017rft, arXiv:1710.02867", "mu"),
    "LHCb_Aaij2019bvg_displaced": ("LHCb (2019, displaced)", "Aaij:2019bvg, arXiv:1910.06926", "mu"),
    "LHCb_Aaij2019bvg_prompt": ("LHCb (2019, prompt)", "Aaij:2019bvg, arXiv:1910.06926", "mu"),
    "NA48_Batley2015lha": ("NA48/2", "Batley:2015lha, arXiv:1504.00607", "e"),
    "NA62_CortinaGil2019nuo": ("NA62 (invisible)", "CortinaGil:2019nuo, arXiv:1903.08767", "nu"),
    "NA62_Dobrich2023dkm": ("NA62 (mumu)", "Dobrich:2023dkm, arXiv:2303.08666", "mu"),
    "NA64_Banerjee2016tad": ("NA64 (2016, inv.)", "Banerjee:2016tad, arXiv:1610.02988", "e"),
    "NA64_Banerjee2017hhz": ("NA64 (2017, inv.)", "Banerjee:2017hhz, arXiv:1710.00971", "e"),
    "NA64_Banerjee2018vgk": ("NA64 (2018, ee)", "Banerjee:2018vgk, arXiv:1803.07748", "e"),
    "NA64_Banerjee2019hmi": ("NA64 (2019, ee)", "Banerjee:2019hmi, arXiv:1912.11389", "e"),
    "NA64_NA642019imj": ("NA64 (2019, inv.)", "NA64:2019imj, arXiv:1906.00176", "e"),
    "NOMAD_Astier2001ck": ("NOMAD", "Astier:2001ck, arXiv:hep-ex/0101041", "e"),
    "NuCAL_Blumlein1990ay": ("NuCal (pi0)", "Blumlein:1990ay, Z. Phys. C51 (1991) 341", "e"),
    "NuCAL_Blumlein1991xh": ("NuCal (p-brem)", "Blumlein:1991xh, Int. J. Mod. Phys. A7 (1992) 3835", "e"),
    "NuCAL_Tsai2019mtm": ("NuCal (Tsai 2019)", "Tsai:2019mtm, arXiv:1908.07525", "e"),
    "Orsay_Davier1989wz": ("Orsay", "Davier:1989wz, Phys. Lett. B229 (1989) 150", "e"),
    "PS191_Bernardi1985ny": ("PS191", "Bernardi:1985ny, Phys. Lett. 166B (1986) 479", "e"),
    "Texono_Bauer2018onh": ("TEXONO (nu-e)", "Bauer:2018onh, arXiv:1803.05466", "e"),
}
# The (g-2)_mu files are bands, not limits; the band is computed in-package (cevnsfit.physics.gm2).
EXCLUDED_PREFIXES = ("AMMmu_",)

# FORESEE U1B-L lines used for B-L.  The other U1B-L lines are older DarkCast v1.x recasts of experiments that the
# DarkCast v2.1 files above cover (v2.1 fixed the neutrino widths, PROVENANCE.md), or the same nu-e digitisations
# (Borexino, CHARM-II, TEXONO of Bauer:2018onh), or NA64 invisible superseded by the 'new' line.
_FS = "FORESEE line (arXiv:2105.07077)"
FORESEE_B_L = {
    "bounds_NA64_inv_new.txt": ("NA64 (inv., FORESEE)", _FS + "; NA64 invisible search in B-L, original not stated"),
    "limits_NA_64mu.txt": ("NA64mu (proj.)", _FS + "; original not stated"),
    "limits_Belle_II.txt": ("Belle II (proj.)", _FS + "; original not stated"),
    "limits_Belle-IIyvv.txt": ("Belle II gamma+inv. (proj.)", _FS + "; original not stated"),
    "limits_SHIP.txt": ("SHiP (proj.)", _FS + "; original not stated"),
    "limits_FASER_FPFWP.txt": ("FASER2 (proj.)", _FS + "; Forward Physics Facility white paper, arXiv:2203.05090"),
}


def resolve_limits_dir(shared_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding ``DS-Decay-Scripts/`` and ``FORESEE/`` (the ``limits`` collection).

    Order: ``shared_dir`` (that folder itself, or a ``shared`` folder containing ``data/limits``); the environment
    variable ``$CEVNSFIT_LIMITS``; a ``shared/data/limits`` beside the clone; the fetched data
    (:mod:`cevnsfit.io.datadir`).  Raises :class:`DataError` saying how to fetch them when none is usable.
    """
    if shared_dir is not None and (Path(shared_dir).expanduser() / "data" / "limits").is_dir():
        shared_dir = Path(shared_dir).expanduser() / "data" / "limits"
    path = resolve_collection("limits", shared_dir, "shared_dir")
    if not (path / DARKCAST_DIR).is_dir():
        raise DataError(f"limits directory {path} has no {DARKCAST_DIR} folder")
    return path


def _canonical(model_name: str) -> str:
    for name in MODEL_NAMES:
        if name.lower() == str(model_name).strip().lower():
            return name
    raise InputError(f"unknown model '{model_name}'; valid names: {', '.join(MODEL_NAMES)}")


def _couples(model: str, uses: str) -> bool:
    """Does ``model`` couple to every lepton a limit relies on ('e', 'mu', 'e+mu'; 'nu': any neutrino)?"""
    q_e, q_mu, q_tau = LEPTON_CHARGES[model]
    need = {"e": q_e != 0, "mu": q_mu != 0, "nu": (q_e, q_mu, q_tau) != (0, 0, 0)}
    return all(need[u] for u in uses.split("+"))


def _lepton_charge(model: str, lepton: str) -> int:
    """Q'_lepton of ``model`` for lepton 'e' or 'mu' (docs/physics.md section 10.2)."""
    return LEPTON_CHARGES[model][("e", "mu").index(lepton)]


def _darkcast_curves(root: Path, folder: str) -> list[LimitCurve]:
    directory = root / DARKCAST_DIR / "recast" / "limits" / folder
    if not directory.is_dir():
        raise DataError(f"missing DarkCast recast folder: {directory}")
    curves = []
    for path in sorted(directory.glob("*.lmt")):
        if path.stem.startswith(EXCLUDED_PREFIXES):
            continue
        label, ref, _ = DARKCAST_FILES.get(path.stem, (None, path.stem, ""))
        curve = read_lmt(path, label=label, reference=ref + _DC_REF, model=folder, coupling="g")
        if curve is not None:  # header-only or all-sentinel file: the limit cannot constrain this model
            curves.append(curve)
    return curves


def curves_for_model(
    model_name: str,
    shared_dir: str | os.PathLike | None = None,
    include_projections: bool = False,
    approximate: bool = False,
) -> list[LimitCurve]:
    """External limits on our model ``model_name`` in our coupling g (masses in MeV), DarkCast then FORESEE.

    Exact DarkCast v2.1 recasts for B-L, L_mu-L_tau, L_e-L_mu, L_e-L_tau (plus FORESEE-only B-L lines); an empty
    list for the models in :data:`NO_CURVES`.  ``include_projections`` adds future-reach lines (FORESEE, B-L only).
    ``approximate`` adds labelled B-L proxies to the B-type models (see module docstring).  Only curves with a
    finite point within :data:`MASS_RANGE_MEV` are returned.  Raises :class:`InputError` for an unknown model and
    :class:`DataError` for missing or malformed files.
    """
    model = _canonical(model_name)
    root = resolve_limits_dir(shared_dir)
    curves: list[LimitCurve] = []
    if model in DARKCAST_RECAST:
        note = MODEL_NOTES[model]
        curves = [c.replace(notes=note) for c in _darkcast_curves(root, DARKCAST_RECAST[model])]
    if model == "B-L":
        for name, (label, ref) in FORESEE_B_L.items():
            curve = read_foresee(root / FORESEE_BL_DIR / name, label=label, reference=ref, coupling="g")
            if curve is not None and (include_projections or curve.kind != "projection"):
                curves.append(curve)
    if approximate and model in PROXY_MODELS:
        note = (
            f"approximate: DarkCast B-L_boson curve used as a proxy; lepton charges (e, mu, tau) here "
            f"{LEPTON_CHARGES[model]} vs (-1, -1, -1) in B-L; a limit set with one lepton species is divided by "
            f"that lepton's |Q'| (its coupling is g|Q'| here, g in B-L); branching ratios still differ by O(1)"
        )
        for c in _darkcast_curves(root, DARKCAST_RECAST["B-L"]):
            uses = DARKCAST_FILES.get(Path(c.source_file).stem, ("", "", "e"))[2]
            if _couples(model, uses):
                factor = 1.0 / abs(_lepton_charge(model, uses)) if uses in ("e", "mu") else 1.0
                curves.append(c.scaled(factor, label=f"{c.label} [B-L proxy]", notes=note))
    return [c for c in curves if c.has_points_in(*MASS_RANGE_MEV)]


def models_without_curves(approximate: bool = False) -> list[str]:
    """Our models for which :func:`curves_for_model` returns no curve (by construction; see :data:`NO_CURVES`)."""
    return [m for m in NO_CURVES if not (approximate and m in PROXY_MODELS)]


def gm2_band_darkcast(model_name: str = "B-L", shared_dir: str | os.PathLike | None = None) -> LimitCurve | None:
    """DarkCast's 2 sigma (g-2)_mu band (Bodas:2021fsy, arXiv:2102.07781; 2021 anomaly) in our g, for overlays.

    Read from the native dark_photon files ``AMMmu_Bodas2021fsy_2l/_2u.lmt`` (epsilon; the muon coupling is
    e*epsilon) and converted to g = e*epsilon/|Q'_mu| with e = sqrt(4 pi alpha(0)).  ``None`` for models with
    Q'_mu = 0 (no band) and for the scalar (the file is for a vector loop).  A cross-check only: the package
    computes the band itself (cevnsfit.physics.gm2; docs/physics.md section 11).
    """
    model = _canonical(model_name)
    charges = LEPTON_CHARGES[model]
    if charges is None or charges[1] == 0:
        return None
    native = resolve_limits_dir(shared_dir) / DARKCAST_DIR / "limits"
    lo = read_lmt(native / "AMMmu_Bodas2021fsy_2l.lmt")
    up = read_lmt(native / "AMMmu_Bodas2021fsy_2u.lmt")
    if lo is None or up is None or len(lo.mass_mev) != len(up.mass_mev) or not (lo.mass_mev == up.mass_mev).all():
        raise DataError(f"{native}: AMMmu_Bodas2021fsy_2l/_2u.lmt are empty or on different mass grids")
    e = math.sqrt(4.0 * math.pi * DEFAULT["constants.alpha"])
    factor = e / abs(charges[1])
    return LimitCurve(
        label="(g-2)_mu 2 sigma (DarkCast)",
        reference="Bodas:2021fsy, arXiv:2102.07781; via DarkCast v2.1",
        mass_mev=lo.mass_mev,
        lower=lo.lower * factor,
        upper=up.lower * factor,
        kind="band",
        source_file=f"{lo.source_file}, {up.source_file}",
        model="dark_photon",
        coupling="g",
        cl="2 sigma band of the 2021 Delta a_mu",
        notes=f"converted from epsilon: g = e*epsilon/|Q'_mu| with |Q'_mu| = {abs(charges[1])}",
    )
