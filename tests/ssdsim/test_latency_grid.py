"""Measured latency grids: interpolation, extrapolation by the formula, the tree-step model, contracts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ssdsim import ForwardLatency, Profile, SchemaError
from ssdsim import latency as lat
from ssdsim.profile import LatencyGrid, LatencyMeasurements

FORM = ForwardLatency(fixed_s=2e-3, token_s=5e-4, attn_s=1e-8, kv_s=1e-6)
AXES = ((1, 4), (1, 5), (64, 512))


def _grid(scale: float = 1.3) -> LatencyGrid:
    b, n, c = np.meshgrid(*AXES, indexing="ij")
    return LatencyGrid(*AXES, seconds=(scale * lat.formula_s(FORM, b, n, c)).tolist())


def test_grid_points_are_the_measurements():
    g = _grid()
    with_grid = ForwardLatency(fixed_s=2e-3, token_s=5e-4, attn_s=1e-8, kv_s=1e-6, grid=g)
    for i, b in enumerate(AXES[0]):
        for j, n in enumerate(AXES[1]):
            for m, c in enumerate(AXES[2]):
                assert lat.forward_s(with_grid, b, n, c) == pytest.approx(g.seconds[i][j][m])


def test_between_points_multilinear_and_outside_scaled_by_formula():
    g = _grid()
    fl = ForwardLatency(fixed_s=2e-3, token_s=5e-4, attn_s=1e-8, kv_s=1e-6, grid=g)
    mid = lat.forward_s(fl, 1, 1, 288)  # halfway along the context axis
    assert mid == pytest.approx((g.seconds[0][0][0] + g.seconds[0][0][1]) / 2)
    # Outside: the grid's edge value times the formula's ratio; here the grid is 1.3 x formula.
    assert lat.forward_s(fl, 16, 9, 1024) == pytest.approx(1.3 * lat.formula_s(FORM, 16, 9, 1024))
    grid_only = ForwardLatency(grid=g)  # no formula: flat beyond the range
    assert lat.forward_s(grid_only, 16, 5, 512) == pytest.approx(g.seconds[1][1][1])


def test_arrays_match_scalars_and_zero_batch_is_free():
    fl = ForwardLatency(fixed_s=1e-3, token_s=1e-4, grid=_grid())
    b = np.array([0, 1, 2, 3, 7])
    c = np.array([10.0, 64.0, 100.0, 600.0, 300.0])
    arr = lat.forward_s(fl, b, 3, c)
    assert arr[0] == 0.0
    assert arr.tolist() == pytest.approx(
        [lat.forward_s(fl, int(x), 3, float(y)) for x, y in zip(b, c, strict=True)]
    )
    assert lat.forward_s(fl, 0, 3, 50.0) == 0.0


def test_tree_model_used_for_prespeculation(make_toy):
    flat = ForwardLatency(fixed_s=5e-3)  # 5 ms per tree step whatever its shape
    prof = make_toy(draft_tree=flat)
    glue = lat.forward_s(prof.draft, 2, 5, 100 + 5)
    assert lat.prespec_s(prof, 2, 4, 12, 100) == pytest.approx(glue + 4 * 5e-3)
    assert lat.prespec_s(make_toy(), 2, 4, 12, 100) != pytest.approx(glue + 4 * 5e-3)


def test_profile_with_grids_round_trips(make_toy, tmp_path):
    prof = make_toy(
        target=ForwardLatency(fixed_s=1e-3, grid=_grid()),
        draft_tree=ForwardLatency(grid=_grid(0.5)),
    )
    path = prof.save(tmp_path / "p.json")
    back = Profile.load(path)
    assert back == prof and back.target.grid.batch == (1, 4)
    assert "grid" in json.loads(path.read_text())["target"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch": [4, 1]}, "strictly increasing"),
        ({"tokens": []}, "non-empty list"),
        ({"seconds": [[[0.1, 0.2]]]}, "shape [2, 2, 2]"),
        ({"context": [64, 0]}, "context[1]"),
    ],
)
def test_bad_grids_rejected(change, message):
    data = {"batch": [1, 4], "tokens": [1, 5], "context": [64, 512]}
    data["seconds"] = [[[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]]]
    data.update(change)
    with pytest.raises(SchemaError, match=message.replace("[", r"\[").replace("]", r"\]")):
        LatencyGrid.from_dict(data)


def test_non_positive_seconds_rejected():
    with pytest.raises(SchemaError, match=r"seconds\[0\]\[0\]\[1\]"):
        LatencyGrid(batch=(1,), tokens=(1,), context=(8, 16), seconds=[[[0.1, 0.0]]])


def test_latency_measurements_contract(tmp_path):
    step = {
        "mode": "sd",
        "batch": 2,
        "k": 4,
        "context": 80.0,
        "step_s": 0.03,
        "draft_s": 0.01,
        "verify_s": 0.018,
    }
    m = LatencyMeasurements(
        target=ForwardLatency(grid=_grid()),
        draft=ForwardLatency(grid=_grid(0.2)),
        link_samples=[[8, 1e-4], [4096, 1.2e-4]],
        host_steps=[step],
        provenance={"tool": "test"},
    )
    assert LatencyMeasurements.load(m.save(tmp_path / "lat.json")) == m
    with pytest.raises(SchemaError, match="host_steps"):
        LatencyMeasurements(target=FORM, draft=FORM, host_steps=[{**step, "mode": "ssd"}])
    with pytest.raises(SchemaError, match="link_samples"):
        LatencyMeasurements(target=FORM, draft=FORM, link_samples=[[8]])


def test_static_batch_rows_cost_the_whole_batch(make_toy):
    """With static_batch_rows the tail steps (some rows finished) cost as much as full ones."""
    from ssdsim import Policy, Workload
    from ssdsim.sim.costs import step_costs
    from ssdsim.sim.outcomes import sample_batch
    from ssdsim.sim.plan import make_plan

    wl = Workload(batch_size=4, output_len_tokens=(20, 60), prompt_len_tokens=10, num_prompts=4)
    costs = {}
    for static in (False, True):
        plan = make_plan(make_toy(static_batch_rows=static), Policy(mode="sd", k=3), wl)
        out = sample_batch(plan, 0, plan.batches()[0])
        costs[static] = step_costs(plan, out)
        live = out.active.sum(axis=1)
    assert live.min() < 4  # the lengths differ, so the batch has a tail
    assert len(set(costs[True].verify)) == 1 and len(set(costs[True].draft)) == 1
    tail = [i for i, n in enumerate(live) if n < 4]
    assert all(costs[False].verify[i] < costs[True].verify[i] for i in tail)


def test_mode_overheads_replace_the_step_overhead_per_mode(make_toy):
    prof = make_toy(
        step_overhead_s=1e-4,
        seq_overhead_s=0.0,
        mode_overheads={"ar": [1e-3, 0], "ssd": [2e-3, 1e-4]},
    )
    fwd1 = lat.forward_s(prof.target, 2, 1, 51)
    assert lat.ar_step_s(prof, 2, 50) == pytest.approx(fwd1 + 1e-3)
    fwd = lat.forward_s(prof.target, 2, 4, 54)
    assert lat.verify_s(prof, 2, 3, 50) == pytest.approx(fwd + 1e-4)  # sd: the default pair
    assert lat.verify_s(prof, 2, 3, 50, "ssd") == pytest.approx(fwd + 2e-3 + 2e-4)
    assert Profile.from_dict(prof.to_dict()).mode_overheads == {
        "ar": (1e-3, 0.0),
        "ssd": (2e-3, 1e-4),
    }
    with pytest.raises(SchemaError, match="mode_overheads"):
        make_toy(mode_overheads={"tree": [1e-3, 0]})
    with pytest.raises(SchemaError, match=r"mode_overheads.ar\[1\]"):
        make_toy(mode_overheads={"ar": [1e-3, -1]})
