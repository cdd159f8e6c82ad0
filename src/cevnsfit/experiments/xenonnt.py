"""XENONnT solar 8B CEvNS: the collaboration's binned likelihood release (SR0, SR1, SR2; CC-BY-4.0).

References: XENON, PRL 133 (2024) 191002 (arXiv:2408.02877, SR0+SR1); arXiv:2604.06002 (SR0+SR1+SR2); release
XENONnT/cevns_data_release, Zenodo 10.5281/zenodo.20576156 (layout in shared/data/xenonnt_cevns/PROVENANCE.md).

Per science run the release gives the observed events (four observables, 3 bins each: 81 bins), background
templates in events/(t yr) -- accidental coincidences (AC) and electronic recoils (ER) fixed, radiogenic neutrons
(RG) on the 7 x 7 grid of light-yield / charge-yield nuisances (tly, tqy in sigma, -3..3) -- and the detection
efficiency of mono-energetic nuclear recoils at 0.5, 0.6, ..., 5.0 keV on the same grid.

**Signal.**  The 8B CEvNS recoil spectrum on natural xenon (9 isotopes, data/xenonnt.yaml) is folded through the
efficiencies, *linearly interpolated between the 0.1 keV nodes*.  Below 0.5 keV and above 5.0 keV the release has
no template: the efficiency is taken as zero there (the analysis threshold is 0.5 keV; the 8B recoils end at
4.7 keV for 124Xe and 4.4 keV for 132Xe, so nothing above 5 keV is lost for the SM; a light-mediator or dark-matter
spectrum above 5 keV is cut, conservatively).  The folding is one matrix per isotope: rows = (grid point, run,
bin), columns = the 0.01-keV recoil grid, stored factorised (rows x 46 nodes) @ (46 nodes x recoils) so that the
kernel of :mod:`cevnsfit.response` and the mediator templates of :mod:`cevnsfit.templates` work unchanged.

**Likelihood.**  Extended binned Poisson over the 81 bins of each selected run, runs combined, with nuisances
(shared by the runs): the 8B flux (free for the measurement; SNO prior in mediator fits), the AC, ER and RG
normalisations (Gaussian pulls, data/xenonnt.yaml) and tly, tqy (unit Gaussians) by cardinal-cubic-spline
morphing on the grid (:mod:`cevnsfit.stats.morphing`).

**Cache.**  Reading the 6 900 small HDF5 files takes seconds; the arrays are cached (``.npz``, written atomically)
under ``$CEVNSFIT_CACHE`` or the user cache directory, keyed by a digest of every release file's path, size and
modification time (and the cache format), so any change to the release invalidates it.
"""

from __future__ import annotations

import hashlib
import os

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..errors import DataError, InputError, OutputError
from ..io.atomic import atomic_path
from ..parameters import DEFAULT, Parameters
from ..physics.cross_section import max_recoil_mev
from ..physics.nuclei import get_nucleus
from ..response import DetectorResponse, Target, build_kernel
from ..sources.sun import SolarSource, with_parameter_file, with_solar_parameters
from ..stats.morphing import MorphedPoissonChi2
from .common import Experiment, PhysicsOptions

NAME = "xenonnt"
LABEL = "XENONnT 8B (SR0+SR1+SR2)"
RUNS = ("sr0", "sr1", "sr2")
COMPONENTS = ("cevns", "ac", "er", "rg")
ISOTOPES = ("Xe124", "Xe126", "Xe128", "Xe129", "Xe130", "Xe131", "Xe132", "Xe134", "Xe136")
OBSERVABLES = ("cs2", "s2_shadow_s2_time_shadow_quantile", "s1_bdt_score", "s2_bdt_score")
GRID = tuple(float(v) for v in range(-3, 4))  # tly, tqy nodes (sigma)
MONO_KEV = tuple(round(0.5 + 0.1 * i, 1) for i in range(46))  # 0.5 ... 5.0 keV
BIN_SHAPE = (3, 3, 3, 3)
N_BINS = 81
CACHE_FORMAT = 2


def with_xenonnt_parameters(params: Parameters = DEFAULT) -> Parameters:
    """``params`` plus the solar (data/solar.yaml) and XENONnT/xenon (data/xenonnt.yaml) sections."""
    return with_parameter_file(with_solar_parameters(params), "xenonnt.yaml")


@dataclass(frozen=True)
class XenonOptions(PhysicsOptions):
    """Analysis choices: runs, 8B flux reference (``sno``/``ssm``) and the 0.01 keV recoil step of the folding."""

    runs: tuple = RUNS
    flux: str = "sno"
    cache: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        runs = tuple(self.runs)
        if not runs or len(set(runs)) != len(runs) or any(r not in RUNS for r in runs):
            raise InputError(f"XENONnT runs must be distinct names among {', '.join(RUNS)}; got {', '.join(map(str, runs)) or 'none'}")
        object.__setattr__(self, "runs", tuple(r for r in RUNS if r in runs))  # release order
        if self.flux not in ("sno", "ssm"):
            raise InputError(f"XENONnT option flux='{self.flux}' is not one of sno, ssm")


class FoldedMatrix:
    """Matrix ``left @ right @ diag(d)`` kept factorised (rows x nodes, nodes x recoils): what the kernel needs.

    ``M * v`` scales the columns (``build_kernel`` multiplies the detector response by cross-section factors on
    the recoil grid); ``M @ x`` is evaluated right to left, so a 11 907-row response costs a 46-node product.
    """

    def __init__(self, left: np.ndarray, right: np.ndarray, diag: np.ndarray | None = None):
        self.left, self.right = left, right
        self.diag = np.ones(right.shape[1]) if diag is None else np.asarray(diag, float)

    @property
    def shape(self) -> tuple[int, int]:
        return self.left.shape[0], self.right.shape[1]

    def __mul__(self, v):
        v = np.asarray(v, dtype=float)
        if v.ndim > 1:
            raise InputError("a folded response can only be scaled per recoil column")
        return FoldedMatrix(self.left, self.right, self.diag * v)

    __rmul__ = __mul__

    def __matmul__(self, x):
        return self.left @ self.right_product(x)

    def right_product(self, x) -> np.ndarray:
        """``right @ diag(d) @ x``: the product without its left factor (rows = the nodes)."""
        x = np.asarray(x, dtype=float)
        return self.right @ (self.diag * x if x.ndim == 1 else self.diag[:, None] * x)

    def toarray(self) -> np.ndarray:
        return (self.left @ self.right) * self.diag


def hat_weights(recoil_kev: np.ndarray, nodes_kev=MONO_KEV) -> np.ndarray:
    """(n_nodes, n_recoil) linear-interpolation weights of the efficiency nodes; zero outside [0.5, 5.0] keV."""
    nodes = np.asarray(nodes_kev, dtype=float)
    t = np.asarray(recoil_kev, dtype=float)
    out = np.zeros((nodes.size, t.size))
    inside = (t >= nodes[0] - 1e-9) & (t <= nodes[-1] + 1e-9)
    ti = np.clip(t[inside], nodes[0], nodes[-1])
    k = np.clip(np.searchsorted(nodes, ti, side="right") - 1, 0, nodes.size - 2)
    frac = (ti - nodes[k]) / (nodes[k + 1] - nodes[k])
    cols = np.flatnonzero(inside)
    out[k, cols] = 1.0 - frac
    out[k + 1, cols] += frac
    return out


# ---- reading the release ----------------------------------------------------------------------------------
def _grid_tag(v: float) -> str:
    return f"{v:.1f}"


def _release_files(root: Path, run: str) -> dict:
    t = root / "templates" / run
    files = {"ac": t / "ac" / f"template_XENONnT_{run}_ac_cevns.h5", "er": t / "er" / f"template_XENONnT_{run}_er_cevns.h5"}
    for x in GRID:
        for y in GRID:
            files[("rg", x, y)] = t / "rg" / f"template_XENONnT_{run}_rg_cevns_tly_{_grid_tag(x)}_tqy_{_grid_tag(y)}.h5"
            for e in MONO_KEV:
                files[("mono", e, x, y)] = t / "mono" / f"template_XENONnT_{run}_mono_{e:.3f}_cevns_tly_{_grid_tag(x)}_tqy_{_grid_tag(y)}.h5"
    return files


def read_binning(path: Path) -> list[np.ndarray]:
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DataError(f"missing XENONnT binning file: {path}") from None
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable binning ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict) or any(k not in doc for k in OBSERVABLES):
        raise DataError(f"{path}: binning must give edges for {', '.join(OBSERVABLES)}")
    edges = []
    for k in OBSERVABLES:
        try:
            e = np.asarray(doc[k], dtype=float)
        except (TypeError, ValueError):
            raise DataError(f"{path}: non-numeric edges for {k}") from None
        if e.shape != (4,) or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
            raise DataError(f"{path}: {k} needs 4 increasing finite edges (3 bins)")
        edges.append(e)
    return edges


def read_events(path: Path) -> np.ndarray:
    """The observed events of one run: (n, 4) array of the four observables (CSV with a header and index)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise DataError(f"missing XENONnT data file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc.__class__.__name__})") from None
    header = [h.strip() for h in lines[0].split(",")] if lines else []
    if any(k not in header for k in OBSERVABLES):
        raise DataError(f"{path}: header must name {', '.join(OBSERVABLES)}")
    cols = [header.index(k) for k in OBSERVABLES]
    rows = []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        try:
            row = [float(parts[c]) for c in cols]
        except (IndexError, ValueError):
            raise DataError(f"{path}: line {i} is not a row of numbers") from None
        if not all(np.isfinite(row)):
            raise DataError(f"{path}: line {i} has a non-finite value")
        rows.append(row)
    return np.array(rows, dtype=float).reshape(-1, 4)


def bin_events_4d(events: np.ndarray, edges: list) -> np.ndarray:
    """(3, 3, 3, 3) counts; bins [lo, hi) except the last, closed (numpy.histogramdd); outside dropped."""
    hist, _ = np.histogramdd(events, bins=edges)
    return hist


def read_template(path: Path, edges: list | None = None) -> np.ndarray:
    """The (3, 3, 3, 3) histogram of one release file (h5py), checked for shape, finiteness and binning."""
    import h5py

    try:
        with h5py.File(path, "r") as h:
            t = np.asarray(h["templates/template"][()], dtype=float)
            file_edges = [np.asarray(h[f"bins/{i}"][()], float) for i in range(4)] if edges is not None else None
    except FileNotFoundError:
        raise DataError(f"missing XENONnT template: {path}") from None
    except (OSError, KeyError) as exc:
        raise DataError(f"{path}: not a XENONnT template ({exc.__class__.__name__})") from None
    if t.shape != BIN_SHAPE:
        raise DataError(f"{path}: template of shape {t.shape}, expected {BIN_SHAPE}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise DataError(f"{path}: template has NaN, infinite or negative entries")
    if file_edges is not None:
        for i, (a, b) in enumerate(zip(file_edges, edges)):
            if a.shape != b.shape or not np.allclose(a, b, rtol=1e-9, atol=1e-9):
                raise DataError(f"{path}: bin edges of axis {i} differ from the run's binning file")
    return t


def _read_fast(path: Path, out: np.ndarray) -> None:
    """Read one template into ``out`` (3, 3, 3, 3) with h5py's low-level API (2x faster than ``h5py.File`` for the
    6 900 tiny files); shape and type are checked here, finiteness by the caller on the whole stack."""
    from h5py import h5d, h5f, h5s

    try:
        fid = h5f.open(os.fsencode(path), h5f.ACC_RDONLY)
    except FileNotFoundError:
        raise DataError(f"missing XENONnT template: {path}") from None
    except (OSError, ValueError) as exc:
        if not path.is_file():
            raise DataError(f"missing XENONnT template: {path}") from None
        raise DataError(f"{path}: not a XENONnT template ({exc.__class__.__name__})") from None
    try:
        try:
            ds = h5d.open(fid, b"templates/template")
        except KeyError:
            raise DataError(f"{path}: not a XENONnT template (no templates/template)") from None
        if ds.shape != BIN_SHAPE:
            raise DataError(f"{path}: template of shape {ds.shape}, expected {BIN_SHAPE}")
        if ds.dtype.kind != "f":
            raise DataError(f"{path}: template of type {ds.dtype}, expected floating point")
        ds.read(h5s.ALL, h5s.ALL, out)
    finally:
        fid.close()


def release_digest(root: Path) -> str:
    """Digest of every release file's relative path, size and mtime (the cache key)."""
    h = hashlib.sha256(f"format {CACHE_FORMAT}".encode())
    for base in ("data", "binning", "templates"):
        for dirpath, dirnames, filenames in os.walk(root / base):
            dirnames.sort()
            for f in sorted(filenames):
                p = Path(dirpath) / f
                st = p.stat()
                h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cache_dir() -> Path:
    given = os.environ.get("CEVNSFIT_CACHE")
    if given:
        return Path(given).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("cevnsfit", appauthor=False))


def read_run(root: Path, run: str) -> dict:
    """Arrays of one run: observed (81,), ac, er (81,) per t yr, rg (49, 81) per t yr, mono (49, 46, 81), edges."""
    edges = read_binning(root / "binning" / f"{run}.yaml")
    events = read_events(root / "data" / f"{run}.csv")
    files = _release_files(root, run)
    if not (root / "templates" / run).is_dir():
        raise DataError(f"missing XENONnT run: no folder {root / 'templates' / run}")
    rg = np.empty((len(GRID), len(GRID), *BIN_SHAPE))
    mono = np.empty((len(GRID), len(GRID), len(MONO_KEV), *BIN_SHAPE))
    # the bin edges of the first file of each kind are compared with the binning file; the rest is read fast
    read_template(files[("rg", GRID[0], GRID[0])], edges)
    read_template(files[("mono", MONO_KEV[0], GRID[0], GRID[0])], edges)
    for i, x in enumerate(GRID):
        for j, y in enumerate(GRID):
            _read_fast(files[("rg", x, y)], rg[i, j])
            for k, e in enumerate(MONO_KEV):
                _read_fast(files[("mono", e, x, y)], mono[i, j, k])
    # each stack with the file key of an index into it (the first bad entry names its file)
    for stack, key in ((rg, lambda i: ("rg", GRID[i[0]], GRID[i[1]])),
                       (mono, lambda i: ("mono", MONO_KEV[i[2]], GRID[i[0]], GRID[i[1]]))):
        bad = ~np.isfinite(stack) | (stack < 0)
        if bad.any():
            first = np.argwhere(bad)[0]
            raise DataError(f"{files[key(first)]}: template has NaN, infinite or negative entries")
    return {
        "observed": bin_events_4d(events, edges).ravel(),
        "n_events": np.array(events.shape[0]),
        "ac": read_template(files["ac"], edges).ravel(),
        "er": read_template(files["er"], edges).ravel(),
        "rg": rg.reshape(-1, N_BINS),
        "mono": mono.reshape(-1, len(MONO_KEV), N_BINS),  # (grid, energy, bins)
        "edges": np.stack(edges),
    }


def load_release(root: Path, runs=RUNS, use_cache: bool = True) -> dict:
    """run -> arrays (:func:`read_run`), from the cache when its key matches the release files."""
    root = Path(root)
    key = release_digest(root)
    try:
        path = cache_dir() / f"xenonnt_{key[:32]}.npz"
    except Exception:  # noqa: BLE001 - no usable home directory (platformdirs failed): the cache only saves time
        path, use_cache = None, False
    if use_cache and os.path.isfile(path):  # False, not an error, under an unreadable home directory
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    return {r: {k[len(r) + 1:]: z[k] for k in z.files if k.startswith(r + "/")} for r in runs}
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt
    out = {r: read_run(root, r) for r in RUNS}
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, key=np.array(key), **{f"{r}/{k}": v for r, d in out.items() for k, v in d.items()})
        except (OSError, InputError, OutputError):
            pass  # an unwritable cache only costs time
    return {r: out[r] for r in runs}


# ---- the experiment ---------------------------------------------------------------------------------------
class XenonNT(Experiment):
    """The XENONnT 8B data set: observed counts, backgrounds, folded response and the morphed Poisson cost.

    An :class:`cevnsfit.experiments.common.Experiment` whose kernel rows are (grid point, run, bin) and whose single
    "time" column is trivial (the Sun is steady); :meth:`signal` turns kernel counts into the cost's
    (49 grid points, runs x 81 bins) signal template.
    """

    name = NAME
    label = LABEL
    components = COMPONENTS
    section = "xenonnt"
    options_class = XenonOptions
    collection = "xenonnt_cevns"
    # the principal files (below the release folder); the templates are read and checked when the release loads
    files = {**{f"{r}_events": f"data/{r}.csv" for r in RUNS}, **{f"{r}_binning": f"binning/{r}.yaml" for r in RUNS}}
    energy_label = "bin (run, cS2, shadow, S1 BDT, S2 BDT)"
    spectra_kind = "observables"  # `cevnsfit plot spectra`: projections of the four observables

    def _parameters(self, params: Parameters) -> Parameters:
        return with_xenonnt_parameters(params)

    def _load(self) -> None:
        runs = self.options.runs
        self.release = load_release(self.data_dir, runs, self.options.cache)
        self.livetimes = {r: float(self.params[f"xenonnt.livetime_{r}"]) for r in runs}
        for r, lt in self.livetimes.items():
            if not lt > 0:
                raise InputError(f"XENONnT livetime of {r} must be positive")
        rel = self.release
        self.observed = np.concatenate([rel[r]["observed"] for r in runs])
        self.n_events = {r: int(rel[r]["n_events"]) for r in runs}
        self.backgrounds = {
            "ac": np.concatenate([rel[r]["ac"] * self.livetimes[r] for r in runs]),
            "er": np.concatenate([rel[r]["er"] * self.livetimes[r] for r in runs]),
            "rg": np.concatenate([rel[r]["rg"] * self.livetimes[r] for r in runs], axis=1),  # (49, n_bins)
        }
        # efficiency rows (grid, run, bin) x nodes, times the run's exposure in t yr
        eff = np.stack([rel[r]["mono"] * self.livetimes[r] for r in runs], axis=1)  # (49, runs, 46, 81)
        self.efficiency_rows = np.ascontiguousarray(eff.transpose(0, 1, 3, 2).reshape(-1, len(MONO_KEV)))

    # ---- shapes ----------------------------------------------------------------------------------------
    @property
    def runs(self) -> tuple:
        return self.options.runs

    @property
    def n_bins(self) -> int:
        return N_BINS * len(self.runs)

    @property
    def n_grid(self) -> int:
        return len(GRID) ** 2

    @property
    def shape(self) -> tuple[int, int]:
        """Kernel shape: (grid points x runs x 81 bins, 1)."""
        return self.n_grid * self.n_bins, 1

    @property
    def grid_index_nominal(self) -> int:
        return GRID.index(0.0) * len(GRID) + GRID.index(0.0)

    def signal(self, computed: np.ndarray) -> np.ndarray:
        """Kernel counts (..., n_grid n_bins, 1) -> the cost's signal template (..., n_grid, n_bins)."""
        c = np.asarray(computed, dtype=float)
        return c.reshape(*c.shape[:-2], self.n_grid, self.n_bins)

    # ---- physics ---------------------------------------------------------------------------------------
    def source(self) -> SolarSource:
        return SolarSource.b8(self.options.flux, self.params)

    def targets(self) -> dict:
        p = self.params
        atoms_per_tonne = 1e6 / p["xenonnt.molar_mass"] * p["constants.N_A"]
        return {n: Target(get_nucleus(n, p), atoms_per_tonne * p[f"nuclei.{n}.abundance"]) for n in ISOTOPES}

    def recoil_grid_mev(self, mass_mev: float, e_max_mev: float) -> np.ndarray:
        """Recoil nodes at multiples of the step (so 0.5 and 5.0 keV are nodes) up to the end point, MeV."""
        step = self.options.recoil_step_kev
        t_max_kev = float(max_recoil_mev(e_max_mev, mass_mev)) * 1e3
        n = int(np.ceil(t_max_kev / step - 1e-9)) + 1
        return np.arange(n) * step * 1e-3

    def detector_response(self) -> DetectorResponse:
        targets = self.targets()
        e_max = self.source().max_energy_mev
        recoil, energy = {}, {}
        for name, tg in targets.items():
            t = self.recoil_grid_mev(tg.nucleus.mass_mev, e_max)
            w = np.full(t.size, t[1] - t[0])
            w[0] = w[-1] = 0.5 * (t[1] - t[0])
            recoil[name] = t
            energy[name] = FoldedMatrix(self.efficiency_rows, hat_weights(t * 1e3) * w[None, :])
        time = {f: np.ones(1) for f in self.source().flavours}
        return DetectorResponse(targets, recoil, energy, time)

    def sm_signal(self) -> np.ndarray:
        """SM 8B CEvNS expectation (n_grid, n_bins) at the reference flux."""
        return self.signal(self.kernel.sm_counts())

    def sm_prediction(self) -> dict:
        """Expected counts per component at the nominal tly = tqy = 0, each (n_bins,) = runs x 81."""
        g = self.grid_index_nominal
        return {"cevns": self.sm_signal()[g], "ac": self.backgrounds["ac"], "er": self.backgrounds["er"],
                "rg": self.backgrounds["rg"][g]}

    @property
    def sigmas(self) -> dict:
        return {z: self.params[f"xenonnt.sigma_{'b8' if z == 'cevns' else z}"] for z in COMPONENTS}

    def cost(self, free_signal: bool = False, fixed_signal: bool = False) -> MorphedPoissonChi2:
        """Extended binned Poisson cost; the signal normalisation is the 8B flux over the reference flux.

        ``free_signal``: no prior on it (the flux measurement); ``fixed_signal``: fixed at 1 (profile scans).
        """
        sig = dict(self.sigmas)
        if free_signal:
            sig["cevns"] = None
        if fixed_signal:
            sig["cevns"] = 0
        return MorphedPoissonChi2(self.name, self.observed, self.backgrounds, sig, (GRID, GRID), ("tly", "tqy"))

    def best_fit(self):
        """The SM fit with the 8B flux free (the measurement): a FitResult with the fitted counts per component."""
        return self.cost(free_signal=True).fit(self.sm_signal())

    def check_inputs(self) -> None:
        """Every input is read by the constructor (release) except the solar parameters: read them too."""
        self.source()

    def sm_summary(self) -> dict:
        """The ``cevnsfit sm`` document of this experiment (see :func:`sm_summary`)."""
        return sm_summary(self)[self.name]

    @classmethod
    def sm_table(cls, summary: dict) -> tuple[str, list[str], list[list[str]], str]:
        """(title, columns, rows, footer) of the human-readable ``cevnsfit sm`` table."""
        s = summary
        lo, hi = s["b8_flux_interval_1sigma"]
        title = (f"{cls.name}: {'+'.join(s['runs'])}, observed {s['observed']} events, "
                 f"background-only rejected at {s['significance_sigma']:.2f} sigma")
        cols = ["run", "observed [events]", "expected background [events]", "expected 8B signal [events]"]
        rows = [[r, str(v["observed"]), f"{v['expected_background']:.2f}", f"{v['expected_signal']:.2f}"]
                for r, v in s["per_run"].items()]
        rows.append(["total", str(s["observed"]), f"{s['expected_background']:.2f}", f"{s['expected_signal']:.2f}"])
        foot = (f"8B flux best fit {s['b8_flux_best_fit']:.3g} cm^-2 s^-1, 1 sigma [{lo:.3g}, {hi:.3g}] "
                f"(reference {s['b8_flux_reference']:.3g})")
        return title, cols, rows, foot

    def run_slice(self, run: str) -> slice:
        i = self.runs.index(run)
        return slice(i * N_BINS, (i + 1) * N_BINS)


def flux_weighted_cross_section_cm2(experiment: XenonNT) -> float:
    """SM <sigma> = int phi(E) sigma(E) dE / int phi(E) dE per xenon nucleus (abundance-weighted), all recoils, cm^2.

    The quantity XENONnT quotes (PRL 133 (2024) 191002): the CEvNS cross section integrated over recoils and
    averaged over the oscillated 8B spectrum; from the kernel's recoil-grid ingredients with no detector response.
    """
    exp = experiment
    src = exp.source()
    k = exp.kernel
    atoms = sum(tg.count for tg in k.detector.targets.values())
    total = 0.0
    for name, tg in k.detector.targets.items():
        t = k.detector.recoil_mev[name]
        w = np.full(t.size, t[1] - t[0])
        w[0] = w[-1] = 0.5 * (t[1] - t[0])
        # per unit fluence and nucleus: V / (count x fluence) without the detector = prefactor x kin, times Q^2
        dense_one = FoldedMatrix(np.ones((1, 1)), w[None, :])
        det = DetectorResponse({name: Target(tg.nucleus, 1.0)}, {name: t}, {name: dense_one},
                               {f: np.ones(1) for f in src.flavours})
        kern = build_kernel(det, SolarSource(1.0, src.spectra, src.flux_per_cm2_s), exp.options.form_factor,
                            exp.options.couplings, exp.options.kinematics, exp.params)
        total += tg.count / atoms * float(kern.sm_counts().sum())
    return total


# ---- the SM measurement (``cevnsfit sm --experiment xenonnt``) ------------------------------------------
def _crossing(f, lo: float, hi: float) -> float:
    from scipy.optimize import brentq

    return float(brentq(f, lo, hi, xtol=1e-6))


def sm_summary(experiment: XenonNT) -> dict:
    """The ``sm --experiment xenonnt --json`` document: counts, 8B flux fit, 1-sigma interval, significance.

    Flux: the signal normalisation profiled with no prior (asymptotic Delta chi^2 = 1 interval, normalisation
    kept >= 0); significance: sqrt(q0), q0 = chi^2(background only) - chi^2_min, one-sided (0 for a deficit).
    """
    exp = experiment
    s = exp.sm_signal()
    phi_ref = exp.source().flux_per_cm2_s
    free = exp.cost(free_signal=True)
    chi_min, p, _ = free.profile(s[None])
    a_hat = float(p[0, 0])
    chi_bkg = float(free(np.zeros_like(s)))
    q0 = max(chi_bkg - float(chi_min[0]), 0.0)
    fixed = exp.cost(fixed_signal=True)

    def delta(a):
        return float(fixed(a * s)) - float(chi_min[0]) - 1.0

    lo = 0.0 if delta(0.0) <= 0 else _crossing(delta, 0.0, a_hat)
    hi_bracket = max(2.0 * a_hat, 1.0)
    while delta(hi_bracket) < 0 and hi_bracket < 1e3:
        hi_bracket *= 2.0
    hi = _crossing(delta, a_hat, hi_bracket)
    pred = exp.sm_prediction()
    sigma_sm = flux_weighted_cross_section_cm2(exp)
    per_run = {}
    for r in exp.runs:
        sl = exp.run_slice(r)
        per_run[r] = {"observed": int(exp.n_events[r]), "observed_in_bins": int(exp.observed[sl].sum()),
                      "expected_background": float(sum(pred[z][sl].sum() for z in COMPONENTS[1:])),
                      "expected_signal": float(pred["cevns"][sl].sum())}
    return {exp.name: {
        "runs": list(exp.runs),
        "observed": int(sum(exp.n_events.values())),
        "expected_background": float(sum(v["expected_background"] for v in per_run.values())),
        "expected_signal": float(pred["cevns"].sum()),
        "b8_flux_reference": phi_ref,
        "b8_flux_best_fit": a_hat * phi_ref,
        "b8_flux_interval_1sigma": [lo * phi_ref, hi * phi_ref],
        "significance_sigma": float(np.sqrt(q0)) if a_hat > 0 else 0.0,
        # flux and cross section enter as a product: at the reference flux, the signal scale measures <sigma>
        "flux_weighted_cross_section_sm_cm2": sigma_sm,
        "flux_weighted_cross_section_best_fit_cm2": a_hat * sigma_sm,
        "flux_weighted_cross_section_interval_1sigma_cm2": [lo * sigma_sm, hi * sigma_sm],
        "per_run": per_run,
    }}


def load(data_dir=None, params: Parameters = DEFAULT, **options) -> XenonNT:
    """Registry entry point: the XENONnT data set with ``options`` (:class:`XenonOptions`)."""
    if "runs" in options and isinstance(options["runs"], str):
        options["runs"] = tuple(r.strip() for r in options["runs"].split(",") if r.strip())
    return XenonNT(data_dir, params, **options)



