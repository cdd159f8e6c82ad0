"""Every error message of the core modules, word for word (issue 20: the suite's mutation score).

A user sees one ``error:`` line (README, "Faults"): its text is part of the interface, as a return value is.  The
tests elsewhere check that bad input is refused, mostly by exception type or a fragment of the text; a message that
lost its subject or gained stray characters passed them (the mutants of docs/validation/published_numbers.md,
"Mutation score").  Here each refusal of the modules that the mutation tool samples is triggered once and its whole
text compared: a change of wording is a change of interface, made here too.
"""

from functools import cache

import numpy as np
import pytest

from cevnsfit import kernel, mediators, templates
from cevnsfit.errors import DataError, InputError
from cevnsfit.experiments import load_experiment
from cevnsfit.parameters import DEFAULT
from cevnsfit.physics import cross_section, form_factors, models
from cevnsfit.responses import energy
from cevnsfit.sources import spectra, sun
from cevnsfit.stats import gridprofile, intervals, morphing, poisson, toys
from cevnsfit.stats.sum import SharedFactor as Shared
from cevnsfit.stats.sum import SumCost

GRID = (np.arange(4.0), np.arange(4.0))  # the smallest morphing grid: 4 nodes per axis
RNG = np.random.default_rng(1)


@cache
def experiment(name):
    return load_experiment(name)


def cost(name):
    return experiment(name).cost()


def toy_poisson():
    """A three-bin Poisson cost with one background, both normalisations 10 % wide."""
    return poisson.PoissonChi2("toy", np.ones(3), {"bkg": np.ones(3)}, {"cevns": 0.1, "bkg": 0.1})


class _Cs133:
    """Stands for the Cs-133 nucleus where only its name is read."""

    name = "Cs133"


CS133 = _Cs133()

CASES = [
    ('coupling scheme', InputError,
     lambda: cross_section.sm_couplings('loop'),
     "unknown coupling scheme 'loop'; choose one of radiative, tree"),
    ('cross-section kinematics', InputError,
     lambda: cross_section.vector_kinematic_factor(10.0, 1e-3, 1e5, 'relativistic'),
     "unknown kinematics 'relativistic'; choose one of ac22, exact"),
    ('coupling not a number', InputError,
     lambda: models.check_couplings('strong'),
     "coupling must be a number or array of numbers, got 'strong'"),
    ('coupling negative', InputError,
     lambda: models.check_couplings([-1.0]),
     'coupling must be finite and non-negative, got [-1.0]'),
    ('coupling above 4 pi', InputError,
     lambda: models.check_couplings([13.0]),
     'coupling above 4 pi = 12.57 is non-perturbative (got max 13)'),
    ('model without a name', InputError,
     lambda: models.VectorModel('', 1, 1, 0, 0, 0),
     'a model needs a non-empty name'),
    ('charge above 100', InputError,
     lambda: models.custom_vector_model('big', 101, 1, 0, 0, 0),
     "model 'big': charges must satisfy |Q'| <= 100 (an overall factor belongs in the coupling g), got (101.0, "
     '1.0, 0.0, 0.0, 0.0)'),
    ('all charges zero', InputError,
     lambda: models.custom_vector_model('none', 0, 0, 0, 0, 0),
     "model 'none': all charges are zero, the mediator couples to nothing"),
    ('leptophilic charge sum', InputError,
     lambda: models.custom_vector_model('lep', 0, 0, 1, 0, 0),
     "model 'lep': a model without quark charges needs q_e + q_mu + q_tau = 0 (got 1) for a finite one-loop "
     "gamma-Z' mixing"),
    ('Z without N', InputError,
     lambda: models.get_model('B-L').interference('nue', 55),
     'pass both Z and N, or neither'),
    ('unknown model', InputError,
     lambda: models.get_model('B+L'),
     "unknown model 'B+L'; choose one of universal, B-L, B_y+L_mu+L_tau, B-3L_e, B-3L_mu, B-2L_e-L_mu, "
     'B-L_e-2L_mu, L_e-L_mu, L_e-L_tau, L_mu-L_tau, scalar'),
    ('charges not a string', InputError,
     lambda: models.parse_charges(1),
     '--charges must be a string like 1/3,1/3,-1,-1,-1, got 1'),
    ('charges count', InputError,
     lambda: models.parse_charges('1,1,1'),
     "--charges needs 5 comma-separated values q_u,q_d,q_e,q_mu,q_tau, got 3: '1,1,1'"),
    ('negative momentum', InputError,
     lambda: models.loop_mixing(1.0, 2.0, -1.0),
     '|q| must be finite and >= 0 (MeV)'),
    ('massless lepton', InputError,
     lambda: models.loop_mixing(0.0, 2.0, 1.0),
     'loop_mixing: lepton masses must be > 0 MeV'),
    ('scalar is not vector', InputError,
     lambda: models.vector_shift_numerator('scalar', 'nue', 1.0, 55, 78, 1.0, 1.0),
     "model 'scalar' is not a vector model"),
    ('shift basis', InputError,
     lambda: models.vector_shift_basis('loop_tau', 1.0, 55, 78, 1.0, 1.0),
     "unknown shift basis 'loop_tau'; choose one of proton, neutron, loop_e, loop_mu"),
    ('negative mediator mass', InputError,
     lambda: models.vector_shift('B-L', 'nue', 10.0, -1.0, 1e-3, 55, 78, 1.0, 1.0),
     'mass_mev must be >= 0, got -1.0'),
    ('massless at zero momentum', InputError,
     lambda: models.vector_shift('B-L', 'nue', 0.0, 0.0, 1e-3, 55, 78, 1.0, 1.0),
     '|q|^2 + M^2 = 0: a massless mediator diverges at |q| = 0'),
    ('NSI key', InputError,
     lambda: models.nsi_weak_charge_squared('nue', {'sV_ee': 0.1}, 0.0, -0.5, 55, 78, 1.0, 1.0),
     "unknown NSI key 'sV_ee'; use e.g. uV_ee, dV_mumu, uV_emu (quark u|d, leptons e|mu|tau)"),
    ('NSI repeated', InputError,
     lambda: models.nsi_weak_charge_squared('nue', {'uV_emu': 0.1, 'uV_mue': 0.1}, 0.0, -0.5, 55, 78, 1.0, 1.0),
     "NSI key 'uV_mue' repeats uV_emu (eps_ab = eps_ba is one parameter)"),
    ('NSI not finite', InputError,
     lambda: models.nsi_weak_charge_squared('nue', {'uV_ee': float('nan')}, 0.0, -0.5, 55, 78, 1.0, 1.0),
     'NSI uV_ee must be finite, got nan'),
    ('Helm radius', InputError,
     lambda: form_factors.helm(1.0, 1.0, 0.9),
     'Helm form factor needs R > sqrt(3) s; got R = 1.0 fm, s = 0.9 fm'),
    ('Fermi radius', InputError,
     lambda: form_factors.symmetrized_fermi(1.0, 1.0, 0.52),
     'symmetrized Fermi needs a larger radius than 1.0 fm for a = 0.52 fm'),
    ('Klein-Nystrand radius', InputError,
     lambda: form_factors.klein_nystrand(1.0, 1.0, 0.7),
     'Klein-Nystrand needs R > sqrt(6) a_k; got R = 1.0 fm'),
    ('form factor kind', InputError,
     lambda: form_factors.form_factor(1.0, 4.8, 'gaussian'),
     "unknown form factor 'gaussian'; choose one of helm, fermi, klein_nystrand"),
    ('Michel moment', InputError,
     lambda: spectra.MichelSpectrum(105.6583755, 192.0, 0.5).moment(-3, 1.0),
     'spectral moment of order -3 is not defined for a Michel spectrum'),
    ('tabulated moment', InputError,
     lambda: spectra.TabulatedSpectrum.from_table([0.0, 1.0, 2.0], [0.0, 1.0, 0.0]).moment(-3, 1.0),
     'spectral moments are k = 0, -1, -2, got -3'),
    ('oscillation parameters', InputError,
     lambda: sun.survival_probability(10.0, DEFAULT.with_overrides({'oscillation.sin2_theta12': 1.5})),
     'oscillation parameters need 0 <= sin^2 theta <= 1 and dm2_21 > 0'),
    ('8B flux name', InputError,
     lambda: sun.b8_flux('borexino'),
     "8B flux 'borexino' is not one of sno, ssm or a number"),
    ('8B flux value', InputError,
     lambda: sun.b8_flux(-1.0),
     '8B flux must be a positive number of cm^-2 s^-1, got -1.0'),
    ('8B shape shift negative', InputError,
     lambda: sun.winter_spectrum(shape_shift=-1e6),
     'the 8B shape shift -1e+06 sigma makes the spectrum negative'),
    ('8B spectrum name', InputError,
     lambda: sun.solar_8b(DEFAULT, spectrum='bahcall'),
     "8B spectrum 'bahcall' is not one of winter, analytic"),
    ('8B analytic band', InputError,
     lambda: sun.solar_8b(DEFAULT, spectrum='analytic', shape_shift=1.0),
     "the analytic 8B spectrum has no shape band: shape_shift needs spectrum 'winter'"),
    ('CL convention', InputError,
     lambda: intervals.threshold('3dof'),
     "unknown confidence-level convention '3dof'; choose one of 1dof, 2dof"),
    ('interval grid', InputError,
     lambda: intervals.allowed_intervals([0.0, 1.0], [1.0], 4.0),
     'allowed_intervals needs an increasing grid and one Delta chi^2 per point'),
    ('interval rows', InputError,
     lambda: intervals.allowed_intervals_rows([0.0, 1.0], np.zeros((2, 3)), 4.0),
     'allowed_intervals needs an increasing grid and one Delta chi^2 per point'),
    ('interval rows refined', InputError,
     lambda: intervals.allowed_intervals_rows([0.0, 1.0], np.zeros((2, 2)), 4.0, refine=lambda x: x),
     'a refinement of the crossings refines one row'),
    ('template masses', InputError,
     lambda: templates.TemplateBasis(experiment('lar'), DEFAULT).templates(models.get_model('B-L'), [-1.0]),
     'mediator masses must be non-negative numbers (MeV); inf means the contact limit'),
    ('morph nodes', InputError,
     lambda: morphing.CardinalSplines([0.0, 1.0, 2.0]),
     'a morphing grid needs at least 4 increasing nodes per axis'),
    ('log grid', InputError,
     lambda: mediators.log_grid(1.0, 0.5),
     'a log grid needs 0 < low < high (finite), got 1.0, 0.5'),
    ('grid couplings', InputError,
     lambda: mediators.MediatorAnalysis().grid('B-L', [1.0], [-1.0], ('lar',)),
     'couplings must be finite and non-negative'),
    ('scan masses', InputError,
     lambda: mediators.check_finite_masses([0.0]),
     'scan masses must be finite and positive (MeV)'),
    ('toy CL', InputError,
     lambda: toys.confidence_level('3sigma'),
     "unknown confidence level '3sigma'; choose one of 2sigma, 90"),
    ('toy seed', InputError,
     lambda: toys.check_seed(-1),
     '--seed must be an integer from 0 to 2**63 - 1, got -1'),
    ('toy grid', InputError,
     lambda: toys.Line([], [0.0, 1.0]),
     'a toy grid needs at least 3 increasing couplings starting at 0'),
    ('bin edges', InputError,
     lambda: energy.check_edges([1.0, 0.5], 'energy bin edges (keVee)'),
     'energy bin edges (keVee) must be increasing finite bin edges'),
    ('energy integration', InputError,
     lambda: energy.GaussianEnergyResponse(None, [0.1, 0.2], integration='simpson'),
     "integration must be exact or midpoint, got 'simpson'"),
    ('energy threshold', InputError,
     lambda: energy.GaussianEnergyResponse(None, [0.1, 0.2], threshold=(1.0, 'eV')),
     "a threshold is (value >= 0, keVnr | keVee), got (1.0, 'eV')"),
    ('gamma_pe efficiency', InputError,
     lambda: energy.GammaPEResponse(None, None, 13.35, 0.0, 0.0, [0.0, 1.0]),
     'the gamma_pe response takes a logistic PE efficiency'),
    ('signal shape', InputError,
     lambda: cost('lar')(np.ones(3)),
     'signal template has shape (3,), expected (12, 10) or (n, *(12, 10))'),
    ('unknown parameter', InputError,
     lambda: cost('lar').fix({'norm_sun': 0.0}),
     'lar: unknown parameter(s) norm_sun; the parameters are norm_cevns, norm_ss, norm_pbrn, norm_dbrn, '
     'shape_cevns_f90, shape_cevns_timing_mean, shape_pbrn_energy, shape_pbrn_timing_mean, '
     'shape_pbrn_timing_width'),
    ('fixed at nan', InputError,
     lambda: cost('lar').fix({'norm_cevns': float('nan')}),
     'lar: norm_cevns must be fixed at a finite value, got nan'),
    ('poisson norm below -1', InputError,
     lambda: cost('csi').fix({'norm_cevns': -2.0}),
     'csi: norm_cevns is eta = a - 1 with a >= 0, cannot be fixed at -2.0'),
    ('grid profile values', InputError,
     lambda: gridprofile.GridProfiledCost('decay', [0.1, 0.2], lambda v: None),
     'the grid of decay needs at least 3 increasing finite values'),
    ('grid profile fixed nan', InputError,
     lambda: cost('dresden2').fix({'decay_exponential': float('nan')}),
     'dresden2: decay_exponential must be fixed at a finite value, got nan'),
    ('shared factor name', InputError,
     lambda: Shared('sns.flux', 0.1),
     "a shared factor needs a name without '.', got 'sns.flux'"),
    ('shared factor theta', InputError,
     lambda: Shared('flux', 0.1, {}, -2.0),
     'shared factor flux: theta must be >= -1 (the factor 1 + theta >= 0), got -2.0'),
    ('costs with one name', InputError,
     lambda: SumCost([cost('lar'), cost('lar')]),
     "cannot add costs with the same name twice: ['lar', 'lar']"),
    ('shared factor twice', InputError,
     lambda: SumCost([cost('lar')], [Shared('f', 0.1, {'lar': 'cevns'}), Shared('f', 0.1, {})]),
     'shared factor f is defined twice'),
    ('shared factor no cost', InputError,
     lambda: SumCost([cost('lar')], [Shared('f', 0.1, {'csi': 'cevns'})]),
     'shared factor f: no cost named csi (costs: lar)'),
    ('shared factor no component', InputError,
     lambda: SumCost([cost('lar')], [Shared('f', 0.1, {'lar': 'brn'})]),
     'shared factor f: cost lar has no component brn'),
    ('experiment option', InputError,
     lambda: load_experiment('lar', form_factor='gaussian'),
     "option form_factor='gaussian' is not one of helm, fermi, klein_nystrand"),
    ('recoil step', InputError,
     lambda: load_experiment('lar', recoil_step_kev=1.0),
     'recoil_step_kev must be in (0, 0.1] keV'),
    ('xenonnt runs', InputError,
     lambda: load_experiment('xenonnt', runs='sr0,sr9'),
     'XENONnT runs must be distinct names among sr0, sr1, sr2; got sr0, sr9'),
    ('kernel kinematics', InputError,
     lambda: kernel.build_kernel(None, None, kinematics='relativistic'),
     "unknown kinematics 'relativistic'; choose one of ac22, exact"),
    ('no pull width', InputError,
     lambda: poisson.PoissonChi2('toy', np.ones(3), {'bkg': np.ones(3)}, {'cevns': 0.1}),
     'toy: no pull width for bkg'),
    ('negative pull width', InputError,
     lambda: poisson.PoissonChi2('toy', np.ones(3), {'bkg': np.ones(3)}, {'cevns': 0.1, 'bkg': -1.0}),
     'toy: the pull width of norm_bkg must be None (free), 0 (fixed) or > 0, got -1.0'),
    ('no background to scale', InputError,
     lambda: toy_poisson().scaled('brn', 2.0),
     "toy: no background component 'brn' (backgrounds: bkg)"),
    ('replica centres', InputError,
     lambda: toy_poisson().replicas(np.ones((2, 3)), np.ones((2, 3)), np.zeros((2, 5))),
     'pull centres have shape (2, 5), expected (2, 2)'),
    ('morph observed', InputError,
     lambda: morphing.MorphedPoissonChi2('toy', -np.ones(3), {}, {'cevns': 0.1}, GRID),
     'toy: observed counts must be finite and non-negative'),
    ('morph background', InputError,
     lambda: morphing.MorphedPoissonChi2('toy', np.ones(3), {'acc': -np.ones(3)}, {'cevns': 0.1, 'acc': 0.1}, GRID),
     "toy: background 'acc' must be finite, >= 0, of shape (3,) or (16, 3)"),
    ('morph norm below -1', InputError,
     lambda: cost('xenonnt').fix({'norm_cevns': -2.0}),
     'xenonnt: norm_cevns is eta = a - 1 with a >= 0, cannot be fixed at -2.0'),
    ('morph shape outside grid', InputError,
     lambda: cost('xenonnt').fix({cost('xenonnt').shape_names[0]: 1e3}),
     'xenonnt: tly can be fixed within its grid [-3, 3], not at 1000.0'),
    ('xenonnt livetime', InputError,
     lambda: load_experiment('xenonnt', params=DEFAULT.with_overrides({'xenonnt.livetime_sr0': 0.0})),
     'XENONnT livetime of sr0 must be positive'),
    ('mediators regime', InputError,
     lambda: mediators.MediatorAnalysis().analyse('B-L', [1.0], [1e-5, 1e-4], ('lar',)).limit('lar', 'mid_mass'),
     "unknown regime 'mid_mass'; choose low_mass or high_mass"),
    ('templates model', InputError,
     lambda: templates.TemplateBasis(experiment('lar'), DEFAULT).templates(3, [1.0]),
     'no templates for model 3'),
    ('toy construction', InputError,
     lambda: toys.Line([], [0.0, 1.0, 2.0]).throw(1.0, RNG, 1, 'hybrid'),
     "unknown toy construction 'hybrid'; choose profile or fixed"),
    ('toy cost without replicas', InputError,
     lambda: toys.Line([toys.LineMember(SumCost([cost('lar')]), lambda g: g)], [0.0, 1.0, 2.0]),
     'cost lar (SumCost) cannot throw replicas: it does not implement the ReplicaCost half of the cost '
     'contract'),
    ('toy value off grid', InputError,
     lambda: toys.Line([], [0.0, 1.0, 2.0]).statistic(1.5, RNG, 1),
     'tested value 1.5 is not on the toy grid'),
    ('shared factor batches', InputError,
     lambda: SumCost([cost('lar'), cost('csi')], [Shared('f', 0.1, {'lar': 'cevns', 'csi': 'cevns'})])(
         {'lar': np.ones((2, *cost('lar').shape)), 'csi': np.ones((3, *cost('csi').shape))}),
     "shared factor f: its costs' signal batches differ in length"),
    ('quenching for nucleus', InputError,
     lambda: energy.GaussianEnergyResponse({'Ar40': None}, [0.1, 0.2]).quenching_for(CS133),
     'no quenching model for Cs133 (given for Ar40)'),
    ('gamma_pe node step', InputError,
     lambda: energy.GammaPEResponse(None, experiment('csi').energy.efficiency, 13.35, 0.0, 0.0, [0.0, 1.0],
                                    node_step=1.0),
     'gamma_pe node_step must be in (0, 0.5] PE'),
    ('8B table missing', DataError,
     lambda: sun.read_winter_table('/nonexistent/winter.csv'),
     'missing 8B spectrum table: /nonexistent/winter.csv (run `cevnsfit data fetch b8_winter`)'),
]


@pytest.mark.parametrize("trigger, error, message", [pytest.param(t, e, m, id=i) for i, e, t, m in CASES])
def test_the_whole_message(trigger, error, message):
    with pytest.raises(error) as raised:
        trigger()
    assert str(raised.value) == message


def test_a_timing_grid_names_its_file_and_the_array_at_fault(tmp_path):
    """The two refusals of an snsFlux2D-derived timing grid (sources/timing.py): edges that do not increase, and an
    array whose shape does not match them."""
    from cevnsfit.sources.timing import GridTiming

    keys = ("nuE", "nuMu", "nuMuBar", "nuEBar")
    path = tmp_path / "grid.npz"
    np.savez(path, t_edges_ns=np.array([0.0, 2.0, 1.0]), **{k: np.ones((2, 3)) for k in keys})
    with pytest.raises(DataError) as raised:
        GridTiming.from_npz(path)
    assert str(raised.value) == f"flux grid {path}: t_edges_ns must be increasing bin edges"
    np.savez(path, t_edges_ns=np.array([0.0, 1.0, 2.0]), **{k: np.ones((3, 3)) for k in keys})
    with pytest.raises(DataError) as raised:
        GridTiming.from_npz(path)
    assert str(raised.value) == f"flux grid {path}: array for nue has shape (3, 3), expected (2, n_E)"


def test_a_line_of_the_8b_table_that_is_not_numbers_is_named(tmp_path):
    path = tmp_path / "winter.txt"
    path.write_text("1, 0.1, 0.01\n2, ten, 0.01\n")
    with pytest.raises(DataError) as raised:
        sun.read_winter_table(path)
    assert str(raised.value) == f"{path}: line 2 is not three comma-separated numbers"


def test_an_8b_table_too_short_is_named(tmp_path):
    path = tmp_path / "winter.txt"
    path.write_text("".join(f"{e}, 0.1, 0.01\n" for e in range(1, 6)))
    with pytest.raises(DataError) as raised:
        sun.read_winter_table(path)
    assert str(raised.value) == f"{path}: needs increasing energies and a non-negative density (at least 10 rows)"
