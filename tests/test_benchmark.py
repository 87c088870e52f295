"""The Part III toy benchmark: methods, results files, summary statistics, command line."""

import csv
import json
import math

import numpy as np
import pytest

from gan_notes import benchmark as bm
from gan_notes import benchmark_results as bmr
from gan_notes.references import REFERENCES

REQUIRED = ["minimax", "non_saturating", "lsgan", "wgan", "wgan_gp", "dragan", "hinge", "began", "sngan", "r1",
            "unrolled", "minibatch_disc", "feature_matching", "pacgan2", "pacgan3", "pacgan4", "instance_noise",
            "mode_seeking", "mixture", "d2gan", "dual_d", "dual_d_saturating"]


def test_every_method_is_listed_with_its_source():
    assert list(bm.METHODS) == REQUIRED
    assert set(bm.SOURCES) == set(bm.METHODS)
    assert all(len(src) == 2 and src[0] for src in bm.SOURCES.values())  # (source and settings, deviations)


@pytest.fixture(scope="module")
def smoke_results():
    res = bm.run_benchmark(protocol="smoke", datasets=["ring"], log=None)
    grid = bm.run_benchmark(["non_saturating", "pacgan4"], ["grid"], protocol="smoke", log=None)
    res["rows"] += grid["rows"]
    res["curves"] += grid["curves"]
    return res


def test_every_method_runs_batched_and_gives_metrics(smoke_results):
    rows = [r for r in smoke_results["rows"] if not r["method"].startswith("ref:")]
    refs = [r for r in smoke_results["rows"] if r["method"].startswith("ref:")]
    seeds = bm.PROTOCOLS["smoke"].seeds
    assert len(rows) == (len(REQUIRED) + 2) * seeds and len(refs) == 2 * len(REFERENCES) * seeds
    for r in rows:
        assert not r["diverged"]
        for k in ("modes", "high_quality", "precision", "recall", "wall_time_s"):
            assert math.isfinite(r[k]), (r["method"], k)
        assert not math.isnan(r["kl"])  # inf when no sample is high quality
    meta = smoke_results["metadata"]
    assert meta["protocol"]["name"] == "smoke" and meta["steps"] == {d: bm.PROTOCOLS["smoke"].steps for d in meta["datasets"]} and meta["torch"]
    # a learning curve per cell, at the protocol's checkpoints, a value per seed
    curves = {(c["dataset"], c["method"]): c for c in smoke_results["curves"]}
    assert len(curves) == len(REQUIRED) + 2
    for c in curves.values():
        assert c["steps"] == [0, *bm.PROTOCOLS["smoke"].eval_steps()]
        assert all(len(c[k]) == len(c["steps"]) and all(len(v) == seeds for v in c[k]) for k in bm.CURVE_METRICS)


def test_results_round_trip(tmp_path, smoke_results):
    path, csv_path = bmr.save_results(smoke_results, tmp_path / "out" / "toy_benchmark.json")
    back = bmr.load_results(path)
    assert back["metadata"] == json.loads(json.dumps(smoke_results["metadata"]))
    assert back["rows"] == smoke_results["rows"]  # inf KL survives the trip
    assert back["curves"] == smoke_results["curves"]  # the learning curves too
    with open(csv_path) as f:
        table = list(csv.DictReader(f))
    assert tuple(table[0]) == bmr.FIELDS and len(table) == len(back["rows"])
    assert bmr.summary(back) == bmr.summary(smoke_results["rows"])


def test_summary_is_mean_and_standard_error():
    rng = np.random.default_rng(0)
    vals = {m: rng.random(7) for m in ("modes", "high_quality", "kl", "precision", "recall")}
    rows = [{"dataset": "ring", "method": "x", "seed": i, "diverged": False, **{m: float(v[i]) for m, v in vals.items()}}
            for i in range(7)]
    rows.append({"dataset": "ring", "method": "x", "seed": 7, "diverged": True, **{m: math.nan for m in vals}})
    rows.append({"dataset": "grid", "method": "x", "seed": 0, "diverged": False, **{m: 1.0 for m in vals}})
    s = bmr.summary(rows)
    for m, v in vals.items():
        mean, se = s["ring", "x"][m]
        assert mean == pytest.approx(v.mean()) and se == pytest.approx(v.std(ddof=1) / np.sqrt(7))
    assert s["ring", "x"]["n"] == 7 and s["ring", "x"]["diverged"] == 1
    assert s["grid", "x"]["modes"][0] == 1.0 and math.isnan(s["grid", "x"]["modes"][1])  # one seed: no s.e.
    rows[0]["kl"] = math.inf
    assert bmr.summary(rows)["ring", "x"]["kl"][0] == math.inf


def test_command_line(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert bm.main(["run", "--protocol", "smoke", "--methods", "hinge", "--datasets", "grid", "--seeds", "3", "--out", str(out)]) == 0
    rows = bmr.load_results(out)["rows"]
    assert [(r["method"], r["seed"]) for r in rows][:3] == [("hinge", 0), ("hinge", 1), ("hinge", 2)]
    assert {r["method"] for r in rows[3:]} == {"ref:" + k for k in REFERENCES}
    printed = capsys.readouterr().out
    assert "wrote" in printed and "beat every reference" in printed


def test_published_anchors():
    assert bmr.PUBLISHED["ring"]["PacGAN Table 1: PacGAN2"] == ((7.9, 0.1), (95.6, 2.0), (0.07, 0.03))
    assert bmr.PUBLISHED["grid"]["VEEGAN Table 1: VEEGAN"][0] == (24.6, None)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: bm.run_cell("ring", "gan9000", protocol="smoke"), "method"),
        (lambda: bm.run_cell("moons", "hinge", protocol="smoke"), "dataset"),
        (lambda: bm.run_cell("ring", "hinge", protocol="huge"), "protocol"),
        (lambda: bm.run_benchmark(["hinge"], ["ring"], seeds=0, protocol="smoke", log=None), "seeds"),
        (lambda: bm.run_benchmark(["hinge"], ["ring"], protocol="smoke", workers=0, log=None), "workers"),
        (lambda: bm.run_benchmark([], ["ring"], protocol="smoke", log=None), "method"),
        (lambda: bm.speed("pacgan2", steps=1, seeds=1, log=None), "train_gan"),
        (lambda: bmr.save_results({"metadata": {}, "rows": []}, "x.txt"), "json"),
    ],
)
def test_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_load_rejects_other_files(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="metadata"):
        bmr.load_results(p)
    p.write_text(json.dumps({"metadata": {}, "rows": [{"dataset": "ring"}]}))
    with pytest.raises(ValueError, match="lacks"):
        bmr.load_results(p)


def test_speed_reports_both_timings():
    (row,) = bm.speed("non_saturating", seeds=2, steps=2, protocol="smoke", devices=["cpu"], log=None)
    assert row["sequential_s"] > 0 and row["batched_s"] > 0 and row["speedup"] == pytest.approx(row["sequential_s"] / row["batched_s"])


def test_goals_pick_the_best_cell_and_say_whether_it_meets_them():
    def cell(modes, hq, kl):
        return {"modes": (modes, 0.1), "high_quality": (hq, 0.01), "kl": (kl, 0.01), "n": 10, "diverged": 0}

    summ = {("ring", "a"): cell(8.0, 0.98, 0.01), ("ring", "b"): cell(7.5, 0.99, 0.1),
            ("grid", "a"): cell(24.9, 0.95, 0.05), ("grid", "b"): cell(20.0, 0.99, 0.01)}
    g = bmr.goals(summ)
    assert g["ring"]["method"] == "a" and g["ring"]["met"]
    assert g["grid"]["method"] == "a" and not g["grid"]["met"]  # KL 0.05 > 0.04


def test_committed_results_are_a_full_run_of_every_cell():
    # The chapters render this file: it must be the book protocol, every cell and reference, 10 seeds each.
    res = bmr.load_results()
    assert res["metadata"]["protocol"] == bm.PROTOCOLS["book"].as_dict()
    counts = {}
    for r in res["rows"]:
        counts[r["dataset"], r["method"]] = counts.get((r["dataset"], r["method"]), 0) + 1
    assert counts == {(d, m): 10 for d in bm.MIXTURES for m in [*bm.METHODS, *("ref:" + k for k in REFERENCES)]}
    assert {(c["dataset"], c["method"]) for c in res["curves"]} == {(d, m) for d in bm.MIXTURES for m in bm.METHODS}
    assert all(c["steps"][-1] == bm.PROTOCOLS["book"].steps_for(c["dataset"]) for c in res["curves"])


def test_a_time_box_plans_the_iterations_from_measured_step_times():
    res = bm.run_benchmark(["non_saturating"], ["ring"], seeds=2, protocol="pacgan", budget_s=1.0, references=False, log=None)
    plan = res["metadata"]["plan"]
    assert plan["protocol_steps"] == 400_000 and plan["planned_steps"] == 100  # nothing fits 1 s: the minimum
    assert set(plan["seconds_per_step"]) == {"ring/non_saturating"} and plan["seconds_per_step"]["ring/non_saturating"] > 0
    assert res["metadata"]["steps"] == {"ring": 100} and res["curves"][0]["steps"][-1] == 100
    with pytest.raises(ValueError, match="schedule"):  # a decaying schedule cannot be cut short
        bm.run_benchmark(["hinge"], ["ring"], protocol="smoke", budget_s=10.0, log=None)
