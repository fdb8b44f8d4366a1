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
