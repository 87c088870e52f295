"""Reference rows of the toy benchmark, checked against closed forms and hand-built summaries."""

import math

import pytest
import torch

from gan_notes import benchmark_results, references as R, toy
from gan_notes.ensemble import REAL_EVAL_SEED
from gan_notes.metrics import mode_coverage

N = 20_000
NAN, INF = math.nan, math.inf


def hq(data, x):
    return mode_coverage(x, data.centers, float(data.std[0]))["high_quality"]


def close(p_hat, p, n=N):
    # Within 4.5 binomial standard errors (plus a rounding slack).
    return abs(p_hat - p) <= 4.5 * math.sqrt(p * (1 - p) / n) + 1e-9


@pytest.mark.parametrize("k", [1, 2, 3])
def test_blur_high_quality_matches_the_rayleigh_cdf(k):
    # |x - c| / (sigma sqrt(1+k^2)) is Rayleigh: P(|x - c| < 3 sigma) = 1 - exp(-9 / (2 (1 + k^2))).
    grid = toy.grid()
    assert close(hq(grid, R.reference_samples(grid, f"blur{k}", N, 0)), 1 - math.exp(-9 / (2 * (1 + k * k))))


def test_blur_is_data_plus_independent_noise_of_k_sigma():
    grid = toy.grid()
    x = R.reference_samples(grid, "blur2", N, 3)
    resid = x - grid.centers[torch.cdist(x, grid.centers).argmin(dim=1)]
    assert abs(float(resid.std()) - 0.05 * math.sqrt(5)) < 0.003
    assert abs(float(resid.mean())) < 0.003


def test_data_is_the_mixture_and_its_high_quality_fraction():
    grid = toy.grid()
    x = R.reference_samples(grid, "data", N, 7)
    assert torch.equal(x, grid.sample(N, generator=torch.Generator().manual_seed(7)))
    assert close(hq(grid, x), 1 - math.exp(-4.5))


def test_uniform_box_on_the_grid():
    grid = toy.grid()
    lo, hi = R.bounding_box(grid)
    assert lo.tolist() == [-4.5, -4.5] and hi.tolist() == [4.5, 4.5]
    assert R.circle_radius(grid) is None
    x = R.reference_samples(grid, "uniform", N, 1)
    assert float(x.min()) >= -4.5 and float(x.max()) <= 4.5
    assert float(x.min()) < -4.49 and float(x.max()) > 4.49
    # Area ratio: 25 discs of radius 3 sigma = 0.15 inside a 9 x 9 box.
    assert close(hq(grid, x), 25 * math.pi * 0.15 ** 2 / 81)


def test_uniform_on_the_ring_is_on_the_circle():
    ring = toy.ring()
    assert R.circle_radius(ring) == pytest.approx(1.0)
    x = R.reference_samples(ring, "uniform", N, 2)
    assert torch.allclose(x.double().norm(dim=1), torch.ones(N, dtype=torch.float64), atol=1e-6)
    # Angles uniform: mean of cos and sin near 0, every quadrant about a quarter.
    assert abs(float(x[:, 0].mean())) < 0.03 and abs(float(x[:, 1].mean())) < 0.03
    # Arc within 3 sigma = 0.03 of a centre: half-angle 2 asin(0.015), 8 arcs.
    assert close(hq(ring, x), 8 * 2 * math.asin(0.015) * 2 / (2 * math.pi))
    # Radius 2 ring with 5 modes: on the circle of radius 2.
    x5 = R.reference_samples(toy.ring(5, radius=2.0), "uniform", 100, 0)
    assert torch.allclose(x5.norm(dim=1), torch.full((100,), 2.0), atol=1e-5)


@pytest.mark.parametrize("make,k", [(toy.grid, 25), (toy.ring, 8)])
def test_collapse_covers_one_mode_with_kl_log_k(make, k):
    data = make()
    modes = set()
    for seed in range(8):
        mc = mode_coverage(R.reference_samples(data, "collapse", 2500, seed), data.centers, float(data.std[0]))
        assert mc["modes"] == 1
        assert mc["kl"] == pytest.approx(math.log(k), rel=1e-12)
        modes.add(max(range(k), key=lambda i: mc["counts"][i]))
    assert len(modes) > 1  # different seeds collapse onto different modes


def test_samples_depend_only_on_the_seed():
    grid = toy.grid()
    torch.manual_seed(0)
    for kind in R.REFERENCES:
        a = R.reference_samples(grid, kind, 50, 4)
        torch.manual_seed(123)  # the global generator plays no part
        assert torch.equal(a, R.reference_samples(grid, kind, 50, 4))
        assert a.shape == (50, 2) and a.dtype == torch.float32
        assert not torch.equal(a, R.reference_samples(grid, kind, 50, 5))


def test_bad_inputs_raise():
    grid = toy.grid()
    with pytest.raises(ValueError, match="kind"):
        R.reference_samples(grid, "blur4", 10, 0)
    with pytest.raises(ValueError, match="n must"):
        R.reference_samples(grid, "data", 0, 0)
    with pytest.raises(ValueError, match="seed"):
        R.reference_samples(grid, "data", 10, True)
    with pytest.raises(ValueError, match="seed"):
        R.reference_samples(grid, "data", 10, -1)
    with pytest.raises(TypeError, match="data"):
        R.reference_samples(grid.centers, "data", 10, 0)
    with pytest.raises(ValueError, match="centres"):
        R.reference_samples(toy.Mixture([[0.0, 0.0]], 0.1), "uniform", 10, 0)
    with pytest.raises(ValueError, match="n_eval"):
        R.reference_rows("grid", grid, seeds=1, n_eval=5)
    with pytest.raises(ValueError, match="seeds"):
        R.reference_rows("grid", grid, seeds=0)
    with pytest.raises(ValueError, match="seeds"):
        R.reference_rows("grid", grid, seeds=20_000)
    with pytest.raises(TypeError, match="dataset"):
        R.reference_rows(None, grid)
    with pytest.raises(ValueError, match="metric"):
        R.beats((1.0, 0.0), (0.0, 0.0), "fid")


def test_beats_uses_two_standard_errors_of_the_difference():
    # se of the difference sqrt(0.3^2 + 0.4^2) = 0.5: the margin is 1.
    assert R.beats((1.01, 0.3), (0.0, 0.4), "modes")
    assert not R.beats((0.99, 0.3), (0.0, 0.4), "modes")
    assert not R.beats((0.0, 0.0), (1.0, 0.0), "modes")
    assert R.beats((0.1, 0.01), (0.2, 0.01), "kl")        # lower KL is better
    assert not R.beats((0.2, 0.01), (0.1, 0.01), "kl")
    assert R.beats((1.0, NAN), (0.0, NAN), "modes")        # NaN se counted as 0
    assert not R.beats((1.0, 0.0), (1.0, 0.0), "modes")
    assert not R.beats((INF, NAN), (0.2, 0.01), "kl")      # inf KL never beats
    assert R.beats((0.2, 0.01), (INF, NAN), "kl")
    assert not R.beats((INF, NAN), (INF, NAN), "kl")
    assert not R.beats((NAN, NAN), (0.0, 0.0), "modes")
    assert not R.beats((1.0, 0.0), (NAN, NAN), "modes")


def test_bar_on_a_hand_built_summary():
    refs = {"data": {"modes": (25.0, 0.0), "kl": (0.005, 0.001)},
            "uniform": {"modes": (22.0, 0.5), "kl": (0.24, 0.02)},
            "blur1": {"modes": (25.0, 0.0), "kl": (0.006, 0.001)},
            "blur3": {"modes": (24.9, 0.1), "kl": (0.012, 0.001)},
            "collapse": {"modes": (1.0, 0.0), "kl": (3.2, 0.0)}}
    assert R.bar(refs, "modes") == ("uniform", 22.0, 0.5)   # blur3 is within 2 se of the data
    # blurred data is no KL bar (FAILS_ON: it fails on sharpness only), though blur3 is 2 se above
    assert R.bar(refs, "kl") == ("uniform", 0.24, 0.02)
    hq = {"data": (0.99, 0.001), "uniform": (0.02, 0.001), "blur1": (0.89, 0.002), "blur3": (0.36, 0.003), "collapse": (0.99, 0.001)}
    assert R.bar({k: {"high_quality": v} for k, v in hq.items()}, "high_quality") == ("blur1", 0.89, 0.002)
    same = {"data": {"modes": (8.0, 0.0)}, "blur1": {"modes": (8.0, 0.0)}}
    assert R.bar(same, "modes") is None
    with pytest.raises(ValueError, match="data"):
        R.bar({"uniform": {"modes": (1.0, 0.0)}}, "modes")


@pytest.fixture(scope="module")
def grid_summary():
    grid = toy.grid()
    rows = R.reference_rows("grid", grid, seeds=10, n_eval=1000)
    # Two made-up methods: one that samples the data (other seeds), one that collapses.
    for kind, name in (("data", "perfect"), ("collapse", "collapsed")):
        real = grid.sample(1000, generator=torch.Generator().manual_seed(REAL_EVAL_SEED))
        for s in range(10):
            x = R.reference_samples(grid, kind, 1000, 50 + s)
            rows.append({"dataset": "grid", "method": name, "seed": s, **R.score(x, grid, real),
                         "wall_time_s": 1.0, "diverged": False})
    return rows, benchmark_results.summary(rows)


def test_reference_rows_have_the_benchmark_fields(grid_summary):
    rows, summ = grid_summary
    refs = [r for r in rows if r["method"].startswith("ref:")]
    assert len(refs) == 10 * len(R.REFERENCES)
    assert all(tuple(r) == benchmark_results.FIELDS for r in refs)
    assert {r["method"] for r in refs} == {"ref:" + k for k in R.REFERENCES}
    assert summ[("grid", "ref:data")]["n"] == 10
    assert summ[("grid", "ref:collapse")]["modes"] == (1.0, 0.0)
    assert summ[("grid", "ref:collapse")]["kl"][0] == pytest.approx(math.log(25))
    # A mode is covered unless all n uniform points miss its disc (area ratio p): 25 (1 - (1-p)^n).
    p = math.pi * 0.15 ** 2 / 81
    assert summ[("grid", "ref:uniform")]["modes"][0] == pytest.approx(25 * (1 - (1 - p) ** 1000), abs=3.0)


def test_bars_on_the_grid(grid_summary):
    _, summ = grid_summary
    refs = R.ref_summary(summ, "grid")
    assert set(refs) == set(R.REFERENCES)
    assert R.bar(refs, "high_quality")[0] == "blur1"
    assert R.bar(refs, "modes")[0] == "uniform"
    with pytest.raises(ValueError, match="dataset"):
        R.ref_summary(summ, "ring")


def test_marks_and_beats_all(grid_summary):
    _, summ = grid_summary
    m = R.marks(summ, "grid")
    assert set(m) == {"perfect", "collapsed"}
    assert m["collapsed"] == {"modes": True, "high_quality": False, "kl": True}
    assert m["perfect"]["modes"] is False and m["perfect"]["high_quality"] is False
    assert R.beats_all(summ, "grid", "perfect", ("modes", "high_quality"))
    assert not R.beats_all(summ, "grid", "collapsed")
    assert not R.beats_all(summ, "grid", "collapsed", ("modes",))
    # The collapse has the data's HQ: it is no bar on HQ, and a collapse beats blur1 there.
    assert R.beats_all(summ, "grid", "collapsed", ("high_quality",))
    with pytest.raises(ValueError, match="cell"):
        R.beats_all(summ, "grid", "nope")


def test_marked_table_daggers_the_cells_that_do_not_beat_the_bar():
    def cell(modes, hq, kl, n=10):
        return {"modes": (modes, 0.1), "high_quality": (hq, 0.01), "kl": (kl, 0.01), "precision": (0.5, 0.01),
                "recall": (0.5, 0.01), "n": n, "diverged": 0}

    summ = {("grid", "ref:data"): cell(25.0, 0.99, 0.005), ("grid", "ref:uniform"): cell(22.5, 0.02, 0.24),
            ("grid", "ref:blur1"): cell(25.0, 0.90, 0.005), ("grid", "ref:collapse"): cell(1.0, 0.99, 3.2),
            ("grid", "good"): cell(24.9, 0.95, 0.01), ("grid", "blurry"): cell(24.9, 0.60, 0.01)}
    table = R.marked_table(summ, "grid", ["good", "blurry"], extra={"s / seed": {"good": "1.0"}})
    lines = table.splitlines()
    good = next(line for line in lines if line.startswith("| good"))
    blurry = next(line for line in lines if line.startswith("| blurry"))
    assert "†" not in good and good.rstrip(" |").endswith("yes") and "1.0" in good
    assert "60.0 ± 1.0 †" in blurry and blurry.rstrip(" |").endswith("no")  # HQ below blur1's 90%
    assert sum(line.startswith("| *ref:") for line in lines) == 4
