"""Replicated experiments: costs with their own data and pull centres, sampling, seeds, the FC line statistic."""

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar

from cevnsfit.errors import InputError
from cevnsfit.stats.chi2 import GaussianChi2, PoissonChi2
from cevnsfit.stats.toys import (Line, LineMember, Replicas, block_rng, critical_band, critical_value, p_value,
                                 significance, wilks_threshold)

RNG = np.random.default_rng(7)
SHAPE = (2, 3)
S = np.array([[30.0, 20.0, 10.0], [15.0, 8.0, 4.0]])
B = np.array([[50.0, 52.0, 49.0], [51.0, 48.0, 50.0]])
B2 = np.array([[5.0, 2.0, 1.0], [3.0, 2.0, 0.5]])
DPLUS = np.array([[0.10, 0.05, -0.05], [0.02, 0.0, -0.1]])
DMINUS = np.array([[-0.08, -0.03, 0.06], [-0.01, 0.02, 0.09]])


def poisson_cost():
    obs = np.array([[82.0, 75.0, 60.0], [70.0, 55.0, 58.0]])
    # every normalisation pulled, as in the CsI chi^2 (a free one can be driven to the boundary 1 + eta = 0,
    # where the damped Newton iteration of PoissonChi2 stops short: a limitation of the existing cost)
    return PoissonChi2("p", obs, {"b": B, "c": B2}, {"cevns": 0.1, "b": 0.05, "c": 0.3})


def gaussian_cost():
    obs = np.array([[82.0, 75.0, 60.0], [70.0, 55.0, 58.0]])
    return GaussianChi2("g", obs, {"b": B}, {"cevns": 0.1, "b": 0.2}, np.sqrt(obs + 5.0),
                        {"shape": ("b", DPLUS, DMINUS), "tilt": ("cevns", DPLUS[::-1], None)})


def poisson_reference(signal, data, centres, sig=(0.1, 0.05, 0.3)):
    """Explicit Poisson chi^2 with shifted pull centres, minimised by scipy."""
    def chi(a):
        mu = a[0] * signal + (1 + a[1]) * B + (1 + a[2]) * B2
        if np.any(mu <= 0):
            return 1e30
        dev = 2 * np.sum(mu - data + np.where(data > 0, data * np.log(np.where(data > 0, data, 1) / mu), 0))
        return dev + ((a[0] - 1 - centres[0]) / sig[0]) ** 2 + ((a[1] - centres[1]) / sig[1]) ** 2 + ((a[2] - centres[2]) / sig[2]) ** 2

    # the cost keeps every normalisation factor 1 + eta >= 0 (a free one may end on that boundary)
    res = minimize(chi, [1.0, 0.0, 0.0], method="L-BFGS-B", bounds=[(0, None), (-1, None), (-1, None)],
                   options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 20000})
    return res.fun


def gaussian_reference(cost, signal, data, centres):
    """Brute force: for fixed shape parameters the chi^2 is a weighted least-squares problem in the
    normalisations (solved exactly); the shape parameters are scanned on a grid and refined by scipy."""
    w = cost.w
    sig_pull = np.array([0.1, 0.2])
    tilt = DPLUS[::-1].ravel()

    def inner(eps):
        e1, e2 = eps
        sys_b = (e1 * DPLUS if e1 >= 0 else -e1 * DMINUS).ravel()
        # chi^2 = sum w (D - a S - e2 tilt S - (1 + eta_b + sys_b) B)^2 + ((a-1-c0)/.1)^2 + ((eta_b-c1)/.2)^2 + ...
        resid0 = data.ravel() - (1 + sys_b) * B.ravel() - e2 * tilt * signal.ravel()
        cols = np.stack([signal.ravel(), B.ravel()], axis=1)
        prior = 1 / sig_pull**2
        centre = np.array([1 + centres[0], centres[1]])
        gram = cols.T @ (w[:, None] * cols) + np.diag(prior)
        rhs = cols.T @ (w * resid0) + prior * centre
        x = np.linalg.solve(gram, rhs)
        r = resid0 - cols @ x
        return r @ (w * r) + np.sum(prior * (x - centre) ** 2) + (e1 - centres[2]) ** 2 + (e2 - centres[3]) ** 2

    grid = np.linspace(-4, 4, 81)
    vals = np.array([[inner((a, b)) for b in grid] for a in grid])
    i, j = np.unravel_index(np.argmin(vals), vals.shape)
    res = minimize(inner, [grid[i], grid[j]], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12})
    return min(res.fun, vals[i, j])


@pytest.mark.parametrize("make", [poisson_cost, gaussian_cost])
def test_replicas_of_the_observed_data_are_the_chi2(make):
    cost = make()
    sig = np.stack([S * f for f in (0.3, 1.0, 2.5)])
    obs = np.broadcast_to(cost.observed.ravel(), (3, cost.n_bins))
    np.testing.assert_allclose(cost.replicas(sig, obs), cost(sig), rtol=1e-10, atol=1e-9)


def test_poisson_replicas_with_own_data_and_centres_match_a_direct_minimisation():
    cost = poisson_cost()
    data = RNG.poisson(S + B + B2, size=(4, *SHAPE)).astype(float)
    centres = np.array([[0.1, -0.05, 0.2], [-0.2, 0.03, -0.4], [0.0, 0.0, 0.0], [0.05, 0.08, -0.3]])
    got = cost.replicas(np.broadcast_to(S, (4, *SHAPE)), data.reshape(4, -1), centres)
    want = [poisson_reference(S, data[k], centres[k]) for k in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-7)


def test_gaussian_replicas_with_own_data_and_centres_match_a_brute_force_minimisation():
    cost = gaussian_cost()
    data = (S + B)[None] + RNG.normal(size=(3, *SHAPE)) * cost.sigma.reshape(SHAPE)
    centres = np.array([[0.05, -0.1, 0.7, -0.4], [-0.1, 0.2, -1.2, 0.3], [0.0, 0.0, 0.0, 0.0]])
    got = cost.replicas(np.broadcast_to(S, (3, *SHAPE)), data.reshape(3, -1), centres)
    want = [gaussian_reference(cost, S, data[k], centres[k]) for k in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-7)
    with pytest.raises(InputError):  # one centre per parameter
        cost.replicas(np.broadcast_to(S, (3, *SHAPE)), data.reshape(3, -1), centres[:, :3])


def test_sampling_follows_the_chi2_assumptions():
    rng = np.random.default_rng(3)
    p, g = poisson_cost(), gaussian_cost()
    mu = (S + B).ravel()
    d = p.sample(mu, rng, 20000)
    n = d.shape[0]
    assert np.all(d == np.round(d)) and np.all(d >= 0)
    # Poisson: mean = variance = mu; 5 sigma of the sampling error of each
    assert np.all(np.abs(d.mean(0) - mu) < 5 * np.sqrt(mu / n))
    assert np.all(np.abs(d.var(0) / mu - 1) < 5 * np.sqrt(2.0 / n) * 1.2)
    x = g.sample(mu, rng, 20000)
    assert np.all(np.abs(x.mean(0) - mu) < 5 * g.sigma / np.sqrt(n))
    assert np.all(np.abs(x.std(0) / g.sigma - 1) < 5 / np.sqrt(2 * n))


def test_block_seeds_are_reproducible_and_distinct():
    a = block_rng(1, ("m", "csi", 0.5, 3)).standard_normal(5)
    assert np.array_equal(a, block_rng(1, ("m", "csi", 0.5, 3)).standard_normal(5))
    for other in [(2, ("m", "csi", 0.5, 3)), (1, ("m", "lar", 0.5, 3)), (1, ("m", "csi", 0.5, 4)), (1, ("n", "csi", 0.5, 3))]:
        assert not np.array_equal(a, block_rng(other[0], other[1]).standard_normal(5))


def test_quantiles_p_values_and_significance():
    t = np.arange(1, 101, dtype=float)  # F(t) = t/100
    assert critical_value(t, 0.9545) == 96.0  # smallest t with F >= 0.9545
    assert critical_value(t, 0.90) == 90.0
    lo, hi = critical_band(t, 0.90)
    assert lo < 90 < hi
    assert p_value(t, 96.0) == 0.05
    assert significance(0.0455) == pytest.approx(2.0, abs=1e-3)
    assert wilks_threshold("2sigma") == pytest.approx(4.0, abs=1e-9)
    assert wilks_threshold("90") == pytest.approx(2.7055, abs=1e-4)


def _toy_line():
    cost = poisson_cost()
    members = [LineMember(cost, lambda g: S[None] * (1.0 + 3.0 * np.asarray(g, float)[:, None, None] ** 2))]
    return Line(members, np.concatenate([[0.0], np.geomspace(0.01, 2.0, 25)]))


def test_line_minimum_matches_brent_between_grid_points():
    line = _toy_line()
    reps = line.throw(0.3, np.random.default_rng(5), 6)
    on_grid = line.chi2_grid(reps)
    got = line.minimum(reps, on_grid)
    for k in range(6):
        one = [r.take([k]) for r in reps]
        f = lambda g: float(line.chi2(np.array([g]), one)[0])  # noqa: E731
        best = min(f(x) for x in line.grid)
        res = minimize_scalar(f, bounds=(0.0, 2.0), method="bounded", options={"xatol": 1e-12})
        assert got[k] <= best + 1e-12
        assert got[k] == pytest.approx(min(best, res.fun), abs=1e-7)


def test_statistic_is_non_negative_and_reproducible():
    line = _toy_line()
    t1 = line.statistic(line.grid[10], block_rng(1, (1,)), 30)
    t2 = line.statistic(line.grid[10], block_rng(1, (1,)), 30)
    assert np.array_equal(t1, t2) and np.all(t1 >= 0) and np.any(t1 > 0)
    with pytest.raises(Exception):
        line.statistic(0.12345, block_rng(1, (1,)), 3)


def test_fixed_construction_keeps_centres_at_zero_and_profile_randomises_them():
    line = _toy_line()
    fixed = line.throw(0.3, np.random.default_rng(1), 50, "fixed")[0]
    prof = line.throw(0.3, np.random.default_rng(1), 50, "profile")[0]
    assert np.all(fixed.centres == 0)
    assert np.std(prof.centres[:, 0]) == pytest.approx(0.1, rel=0.3)  # the pull width of the signal
    assert isinstance(fixed, Replicas)


def test_a_free_normalisation_has_no_randomised_centre():
    obs = np.array([[82.0, 75.0, 60.0], [70.0, 55.0, 58.0]])
    cost = PoissonChi2("p", obs, {"b": B}, {"cevns": None, "b": 0.05})
    line = Line([LineMember(cost, lambda g: S[None] * (1.0 + np.asarray(g, float)[:, None, None]))], np.array([0.0, 0.5, 1.0]))
    rep = line.throw(0.5, np.random.default_rng(2), 40)[0]
    assert np.all(rep.centres[:, 0] == 0) and np.std(rep.centres[:, 1]) > 0


def test_replica_contract_is_a_type_every_cost_has():
    """Toys need the ReplicaCost half of the cost contract: the Poisson, Gaussian and morphed costs implement it; a
    toy line built on a cost without it is refused with a one-line reason (not an AttributeError deep in a task)."""
    from cevnsfit.stats.chi2 import BinnedCost, ReplicaCost
    from cevnsfit.stats.morphing import MorphedPoissonChi2

    assert all(issubclass(k, ReplicaCost) for k in (PoissonChi2, GaussianChi2, MorphedPoissonChi2))

    class Plain(BinnedCost):
        name, shape = "xe", (20, 3)

        def profile(self, signal):
            return np.zeros(len(signal)), None

        def fit(self, signal):
            return None

        def _pack(self):
            pass

    signal = lambda g: np.multiply.outer(np.asarray(g, float), np.ones((20, 3)))  # noqa: E731
    with pytest.raises(InputError, match=r"xe \(Plain\) cannot throw replicas"):
        Line([LineMember(Plain(), signal)], np.array([0.0, 0.5, 1.0]))


def test_every_registered_data_set_can_have_toys():
    """Every registered data set's costs throw replicas: the COHERENT costs, XENONnT's morphed cost, and
    Dresden-II's grid-profiled one (stats/gridprofile.py: its members' replicas, the decay length refitted)."""
    from cevnsfit.experiments import DATA_SETS
    from cevnsfit.fc import _analysis, toy_data_sets, without_replicas
    from cevnsfit.stats.gridprofile import GridProfiledCost

    an = _analysis(None)
    assert isinstance(an.cost("dresden2"), GridProfiledCost)
    assert toy_data_sets(an) == toy_data_sets() == list(DATA_SETS)
    assert all(without_replicas(an, d) == [] for d in DATA_SETS)


def test_toy_data_sets_are_decided_by_the_costs(xenonnt_without_replicas):
    """With XENONnT's cost replaced by one without replicas (conftest.py), the data sets holding it are left out."""
    from cevnsfit.experiments import DATA_SETS
    from cevnsfit.fc import toy_data_sets, without_replicas
    from cevnsfit.mediators import MediatorAnalysis

    an = MediatorAnalysis()
    assert toy_data_sets(an) == [d for d in DATA_SETS if "xenonnt" not in DATA_SETS[d].members]
    for d, spec in DATA_SETS.items():
        assert without_replicas(an, d) == [n for n in spec.members if n == "xenonnt"]
