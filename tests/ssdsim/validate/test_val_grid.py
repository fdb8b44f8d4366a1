"""The validation grid and the comparison arithmetic (no executor runs)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest

from ssdsim import Policy, Workload, load_profile
from ssdsim.validate.compare import format_table, predict, summarize
from ssdsim.validate.grid import Point, full_grid, pass_order, quick_grid


@pytest.fixture(scope="module")
def profile():
    return load_profile("embedded-cpu")


def test_full_grid_is_the_issue_grid(profile):
    pts = full_grid(profile)
    assert len(pts) == 84  # per (B, T): AR, SD k in 2,4,6,8, SSD 4 k x 2 shapes x 2 fallbacks
    assert len({p.key for p in pts}) == 84
    ssd = [p for p in pts if p.policy.mode == "ssd"]
    assert {p.policy.k for p in ssd} == {2, 4, 6, 8}
    assert {p.policy.fallback for p in ssd} == {"jit", "fast"}
    assert {(p.batch_size, p.temperature) for p in pts} == {(1, 0.0), (1, 1.0), (4, 0.0), (4, 1.0)}
    for p in ssd:  # equal budgets: uniform 3 per position, geometric decays
        assert p.policy.budget == 3 * (p.policy.k + 1)
        fan = p.policy.fan_out[:-1]  # rejection positions (the bonus slot has its own weight)
        if p.shape == "geometric":
            assert all(a >= b for a, b in itertools.pairwise(fan)), p.policy.fan_out
            assert p.policy.k < 4 or fan[0] > fan[-1]


def test_quick_grid(profile):
    assert [p.key.split("_")[0] for p in quick_grid(profile)] == ["ar", "sd", "ssd", "ssd"]


def test_keys_name_everything_that_matters():
    a = Point(Policy(mode="ssd", k=2, fan_out=(3, 2, 1)), 4, 1.0, "geometric")
    b = Point(Policy(mode="ssd", k=2, fan_out=(3, 2, 1), rescale=0.5), 4, 1.0, "geometric")
    assert a.key != b.key and "C0.5" in b.key and a.key.endswith("_b4_t1")


def test_predict_averages_seeds(profile):
    wl = Workload(output_len_tokens=32, prompt_len_tokens=40, num_prompts=2)
    one = predict(profile, Policy(mode="sd", k=2), wl, seeds=1)
    two = predict(profile, Policy(mode="sd", k=2), wl, seeds=3)
    assert one["hit_rate"] is None and one["tokens_per_s"] > 0
    assert two["tokens_per_s"] != one["tokens_per_s"]


def test_summary_errors():
    rows = [
        {
            "error": e,
            "hit_rate_error": h,
            "label": "x",
            "measured": {"tokens_per_s": 100.0, "hit_rate": None},
            "predicted": {"tokens_per_s": 100.0 * (1 + e), "hit_rate": None},
            "load_avg_1m": 1.0,
        }
        for e, h in ((0.01, None), (-0.05, 0.02), (0.02, -0.1))
    ]
    s = summarize(rows)
    assert s["median_abs_error"] == pytest.approx(0.02)
    assert s["max_abs_error"] == pytest.approx(0.05)
    assert s["hit_rate_max_abs_error"] == pytest.approx(0.1)
    assert "median |error| 2.0%, max 5.0%" in format_table(rows, s)
    assert s["tokens_per_step_median_abs_error"] is None  # no rows carried one


def test_tokens_per_step_errors_leave_ar_out():
    """Tokens per step carry no timing: their error is the chance model's alone (AR's is 0)."""
    rows = [
        {
            "mode": mode,
            "error": 0.0,
            "hit_rate_error": None,
            "tokens_per_step_error": e,
            "label": mode,
            "measured": {"tokens_per_s": 1.0, "hit_rate": None},
            "predicted": {"tokens_per_s": 1.0, "hit_rate": None},
        }
        for mode, e in (("ar", 0.5), ("sd", -0.04), ("ssd", 0.02), ("ssd", 0.1))
    ]
    s = summarize(rows)
    assert s["tokens_per_step_median_abs_error"] == pytest.approx(0.04)
    assert s["tokens_per_step_max_abs_error"] == pytest.approx(0.1)
    assert "tokens per step (SD and SSD; no timing in it): median |error| 4.0%, max 10.0%" in (
        format_table(rows, s)
    )


def test_speedup_errors_divide_by_ar_of_the_same_pass():
    def r(mode, b, meas, pred):
        return {
            "mode": mode,
            "batch_size": b,
            "temperature": 0.0,
            "error": pred / meas - 1,
            "hit_rate_error": None,
            "measured": {"tokens_per_s": meas},
            "predicted": {"tokens_per_s": pred},
        }

    # AR measured 10% fast at B=1 and SD as well: the speedup error cancels the machine's drift
    rows = [r("ar", 1, 110.0, 100.0), r("sd", 1, 165.0, 150.0), r("ar", 4, 50.0, 50.0)]
    rows.append(r("sd", 4, 80.0, 88.0))
    s = summarize(rows)
    assert rows[1]["speedup_error"] == pytest.approx(0.0)
    assert rows[3]["speedup_error"] == pytest.approx(0.1)
    assert rows[0]["speedup_error"] is None
    assert s["speedup_median_abs_error"] == pytest.approx(0.05)
    assert s["speedup_max_abs_error"] == pytest.approx(0.1)


def test_rows_report_the_spread_of_their_passes(monkeypatch):
    """A point's passes give the measurement's own noise; the summary sets errors beside it."""
    from ssdsim.validate import compare

    predicted = _fake_predictions(monkeypatch, 105.0)

    profile = SimpleNamespace(provenance={})
    inside = compare.row(profile, _records(90.0, 110.0, 100.0), seeds=1)
    assert inside["spread"] == pytest.approx(0.2) and inside["inside_passes"] is True
    assert inside["error"] == pytest.approx(0.05)
    assert inside["adjusted_error"] is None  # no probes: nothing to adjust by
    predicted["v"] = 120.0
    outside = compare.row(profile, _records(95.0, 105.0), seeds=1)
    assert outside["spread"] == pytest.approx(0.1) and outside["inside_passes"] is False
    single = compare.row(profile, _records(100.0), seeds=1)
    assert single["spread"] is None and single["inside_passes"] is None
    s = summarize([inside, outside, single])
    assert s["repeat_spread_median"] == pytest.approx(0.15)
    assert s["repeat_spread_max"] == pytest.approx(0.2)
    assert s["inside_passes"] == 1
    assert "spread by 15.0% (median), 20.0% (max)" in format_table([inside, outside, single], s)
    assert "inside the passes' range at 1 of 3 points" in format_table([inside, outside, single], s)
    # each pass predicted by the simulator and by the mean of its point's other passes
    assert inside["pass_errors"]["other_passes"] == pytest.approx([105 / 90 - 1, 1 - 95 / 110, 0])
    assert outside["pass_errors"]["simulator"] == pytest.approx([120 / 95 - 1, 120 / 105 - 1])
    assert all(v == [] for v in single["pass_errors"].values())
    assert s["pass_median_abs_error"] == pytest.approx(120 / 105 - 1)  # of 5 passes
    assert s["repeat_median_abs_error"] == pytest.approx(105 / 95 - 1)
    assert "other passes: 10.5%" in format_table([inside, outside, single], s)


def _fake_predictions(monkeypatch, tokens_per_s: float) -> dict[str, float]:
    """compare.row without simulating: every point predicted at ``value["v"]`` tokens/s."""
    from ssdsim.validate import compare

    value = {"v": tokens_per_s}
    monkeypatch.setattr(compare, "trace_workload", lambda path: Workload())
    monkeypatch.setattr(compare, "target_speed", lambda profile, path: None)
    monkeypatch.setattr(
        compare,
        "predict",
        lambda *a: {
            "tokens_per_s": value["v"],
            "batch_tokens_per_s": value["v"],
            "hit_rate": None,
            "tokens_per_step": 1.0,
        },
    )
    return value


def _records(*speeds, probes=None):
    return [
        {
            "key": f"ar_b1_t0_r{i}",
            "label": "ar B=1 T=0",
            "policy": Policy(mode="ar").to_dict(),
            "batch_size": 1,
            "temperature": 0.0,
            "trace": "unused",
            "measured": {
                "tokens_per_s": v,
                "batch_tokens_per_s": v,
                "hit_rate": None,
                **({"speed_probe": {"target_forward_s": probes[i]}} if probes else {}),
            },
            "load_avg_1m": [0.0, 0.0],
        }
        for i, v in enumerate(speeds)
    ]


def test_adjusted_error_takes_out_the_speed_the_probe_saw(monkeypatch):
    """A pass the probe saw 10% slower than the calibration runs counts 10% faster, and one it
    saw 10% faster 10% slower; without the calibration's probe nothing is adjusted."""
    from ssdsim.validate import compare

    _fake_predictions(monkeypatch, 105.0)
    profile = SimpleNamespace(provenance={"speed_probe_s": 0.004})
    recs = _records(90.0, 110.0, probes=[0.0044, 0.0036])
    r = compare.row(profile, recs, seeds=1)
    assert r["error"] == pytest.approx(0.05)  # the plain error is unchanged
    assert r["speed"] == pytest.approx(1.0)
    assert r["adjusted_measured"] == pytest.approx(99.0)
    assert r["adjusted_error"] == pytest.approx(105.0 / 99.0 - 1.0)
    assert r["adjusted_spread"] == pytest.approx(0.0, abs=1e-12)
    assert r["pass_errors"]["other_passes_adjusted"] == pytest.approx([0.0, 0.0], abs=1e-12)
    summary = compare.summarize([r])
    assert summary["adjusted_median_abs_error"] == pytest.approx(105.0 / 99.0 - 1.0)
    assert summary["adjusted_points"] == 1
    assert "adjusted for the machine's speed" in compare.format_table([r], summary)
    assert compare.row(SimpleNamespace(provenance={}), recs, seeds=1)["adjusted_error"] is None
    # the profile's weight: how far runs follow their probe (calibration fitted it)
    half = SimpleNamespace(provenance={"speed_probe_s": 0.004, "speed_probe_weight": 0.5})
    r_half = compare.row(half, recs, seeds=1)
    assert r_half["adjusted_measured"] == pytest.approx((90.0 * 1.1**0.5 + 110.0 * 0.9**0.5) / 2)
    one_missing = _records(90.0, 110.0, probes=[0.0044, 0.0036])
    one_missing[1]["measured"].pop("speed_probe")
    assert compare.row(profile, one_missing, seeds=1)["adjusted_error"] is None


def test_group_bias_keeps_the_sign_that_absolute_errors_hide():
    """Two groups with the same |error| but opposite leanings: the summary tells them apart."""

    def row(mode, b, t, e):
        return {
            "error": e,
            "hit_rate_error": None,
            "label": f"{mode} B={b} T={t}",
            "mode": mode,
            "batch_size": b,
            "temperature": t,
            "measured": {"tokens_per_s": 100.0, "hit_rate": None},
            "predicted": {"tokens_per_s": 100.0 * (1 + e), "hit_rate": None},
        }

    rows = [row("sd", 1, 0.0, e) for e in (-0.10, -0.12, -0.08)]
    rows += [row("ssd", 1, 1.0, e) for e in (0.10, 0.12, 0.08)]
    s = summarize(rows)
    assert s["median_abs_error"] == pytest.approx(0.10)
    assert s["group_bias"] == {
        "sd B=1 T=0": pytest.approx(-0.10),
        "ssd B=1 T=1": pytest.approx(0.10),
    }
    assert "sd B=1 T=0 -10.0%, ssd B=1 T=1 +10.0%" in format_table(rows, s)


def test_each_pass_starts_at_a_different_point_of_the_grid(profile):
    pts = full_grid(profile)
    orders = [pass_order(pts, r, 3) for r in range(3)]
    assert all(sorted(p.key for p in o) == sorted(p.key for p in pts) for o in orders)
    assert orders[0] == pts
    n = len(pts)
    starts = [pts.index(o[0]) for o in orders]
    assert starts == [0, n // 3, 2 * n // 3]
    assert pass_order(pts, 0, 1) == pts and pass_order([], 2, 3) == []


def test_passes_at_t_above_0_sample_with_their_own_seed(tmp_path):
    """Pass r at T > 0 runs with seed + r (its own draw of the sampling), greedy passes keep the
    seed; the cache key holds the pass's seed, so a record of another seed is not reused."""
    from ssdsim.validate.runner import RunSettings, executor_argv

    s = RunSettings("embedded", "p.jsonl", 4, 16, seed=5)
    hot = Point(Policy(mode="sd", k=2), batch_size=1, temperature=1.0)
    cold = Point(Policy(mode="sd", k=2), batch_size=1, temperature=0.0)
    seeds = lambda p: [s.run_seed(p, r) for r in range(3)]  # noqa: E731
    assert seeds(hot) == [5, 6, 7] and seeds(cold) == [5, 5, 5]
    argv = executor_argv(hot, s, tmp_path / "p.json", tmp_path / "t.jsonl", repeat=2)
    assert argv[argv.index("--seed") + 1] == "7"
    assert s.key(hot, 0) == s.key(cold, 2) == s.as_dict()
    assert s.key(hot, 2) != s.as_dict() and s.key(hot, 2)["seed"] == 7
    fixed = RunSettings("embedded", "p.jsonl", 4, 16, seed=5, vary_seed=False)
    assert fixed.key(hot, 2) == fixed.as_dict() == s.as_dict()


def test_a_prompt_file_is_keyed_by_its_absolute_path(tmp_path, monkeypatch):
    """The same prompt file named relatively or absolutely keys the same cached runs; a prompt
    set's name stays as given."""
    from ssdsim.validate.cli import prompts_arg

    f = tmp_path / "sub" / "p.jsonl"
    f.parent.mkdir()
    f.write_text('{"prompt": "x"}\n')
    monkeypatch.chdir(tmp_path)
    assert prompts_arg("sub/p.jsonl") == prompts_arg(str(f)) == str(f.resolve())
    assert prompts_arg("code64") == "code64"
