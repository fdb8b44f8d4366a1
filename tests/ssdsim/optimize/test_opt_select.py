"""What the optimizer re-evaluates: the best of each kind of policy first, not one policy five times."""

from __future__ import annotations

from ssdsim.optimize.select import diverse


def test_diverse_takes_each_family_first_then_the_rest_in_order():
    # (name, fallback, k), best first: four near-copies of one k=8 fast policy lead the ranking
    ranked = [
        ("a", "fast", 8),
        ("b", "fast", 8),
        ("c", "fast", 8),
        ("d", "fast", 7),
        ("e", "jit", 4),
        ("f", "jit", 4),
    ]
    fb, k_fb = (lambda r: r[1]), (lambda r: (r[2], r[1]))
    names = lambda rows: [r[0] for r in rows]  # noqa: E731
    assert names(diverse(ranked, 2, fb, k_fb)) == ["a", "e"]  # the best of each fallback
    assert names(diverse(ranked, 3, fb, k_fb)) == ["a", "d", "e"]  # then a new (k, fallback)
    assert names(diverse(ranked, 4, fb, k_fb)) == ["a", "b", "d", "e"]  # then the next best
    assert names(diverse(ranked, 1, fb, k_fb)) == ["a"]  # never more than asked
    assert names(diverse(ranked, 10, fb)) == names(ranked)
    assert names(diverse(ranked, 3)) == ["a", "b", "c"]  # no family: the plain top n
    assert diverse([], 3, fb) == []


def _fake_simulate(policy, workload, seed):
    """Per sequence, a deep k is fast; per batch, the slowest sequence makes it slow (k <= 2 wins)."""
    from ssdsim.trace import RunSummary

    k = policy.k if policy.mode != "ar" else 0
    per_seq = 50.0 + 5.0 * k
    batch = workload.batch_size * (60.0 / (1 + (k - 2) ** 2 / 4) if k else 50.0)
    return RunSummary(
        mode=policy.mode,
        policy=policy.label(),
        batch_size=workload.batch_size,
        temperature=workload.temperature,
        generated_tokens=100,
        decode_s=100 / batch,
        steps=10,
        tokens_per_s=per_seq,
        batch_tokens_per_s=batch,
        mean_accepted_len=1.0,
        tokens_per_step=2.0,
        hit_rate=0.5 if policy.mode == "ssd" else None,
    )


def test_the_objective_decides_what_is_best():
    """Per-sequence tokens/s and the batch's tokens/s rank policies differently at B > 1; the
    study maximises the one asked for, ranks its candidates and reports speedups by it."""
    from ssdsim.optimize import Settings, optimize
    from ssdsim.optimize.report import summary_dict
    from ssdsim.profile import load_profile
    from ssdsim.workload import Workload

    profile = load_profile("embedded-cpu")
    wl = Workload(batch_size=8, output_len_tokens=32, num_prompts=8)
    best = {}
    for metric in ("tokens_per_s", "batch_tokens_per_s"):
        settings = Settings(
            n_trials=40, storage="memory", progress=False, objective=metric, k_max=8
        )
        result = optimize(profile, wl, settings, simulate=_fake_simulate)
        rates = [c.rate(metric) for c in result.candidates]
        assert rates == sorted(rates, reverse=True)
        assert result.best.rate(metric) == max(rates)
        summary = summary_dict(result, profile, wl, settings)
        assert summary["objective"] == metric
        ar = result.baselines["ar"].rate(metric)
        assert summary["best"]["speedup_vs_ar"] == result.best.rate(metric) / ar
        best[metric] = result.best.policy.k
    assert best["tokens_per_s"] >= 6  # deep lookahead per sequence
    assert best["batch_tokens_per_s"] == 2  # the batch optimum
