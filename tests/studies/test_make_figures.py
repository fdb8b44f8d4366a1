"""studies/make_figures.py regenerates every closed-loop figure from results files (small PNGs).

The results here are made by the simulator (two seeds standing in for measured and predicted),
so the test checks the plumbing and the figures' existence and size, not the numbers.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from ssdsim import Workload, load_profile, paper_default
from ssdsim.simulator import simulate
from ssdsim.validate.compare import summarize
from ssdsim.validate.grid import grid

ROOT = Path(__file__).resolve().parents[2]
FIGURES = (
    "hit_rate_vs_fan_out.png",
    "fan_out_shapes.png",
    "predicted_vs_measured.png",
    "speedup_vs_batch.png",
    "speedup_vs_temperature.png",
    "timeline.png",
    "paired_speedups.png",
)


@pytest.fixture(scope="module")
def make_figures():
    sys.path.insert(0, str(ROOT / "studies"))
    import make_figures

    return make_figures


def _results(d: Path) -> None:
    prof = load_profile("embedded-cpu")
    wl = Workload(output_len_tokens=24, prompt_len_tokens=40, num_prompts=2)
    rows = []
    for p in grid(prof, (2, 4), (1, 4), (0.0, 1.0), shapes=("uniform",), fallbacks=("jit",)):
        w = dataclasses.replace(wl, batch_size=p.batch_size, temperature=p.temperature)
        m, q = (simulate(prof, p.policy, w, seed=s) for s in (1, 2))
        rows.append(
            {
                "key": p.key,
                "label": p.label,
                "mode": p.policy.mode,
                "batch_size": p.batch_size,
                "temperature": p.temperature,
                "measured": {"tokens_per_s": m.tokens_per_s, "hit_rate": m.hit_rate},
                "predicted": {"tokens_per_s": q.tokens_per_s, "hit_rate": q.hit_rate},
                "error": q.tokens_per_s / m.tokens_per_s - 1,
                "hit_rate_error": None,
            }
        )
    (d / "validation.json").write_text(
        json.dumps({**summarize(rows), "workload": wl.to_dict(), "rows": rows})
    )
    simulate(
        prof,
        paper_default(),
        dataclasses.replace(wl, batch_size=2),
        trace_path=d / "timeline.jsonl",
    )
    speedups = {  # a paired stage's rows (studies/loop_paired.paired_speedups)
        name: {"measured": m, "measured_min": m - 0.05, "measured_max": m + 0.04, "predicted": p}
        for name, m, p in (
            ("chosen", 1.2, 1.35),
            ("grid sd k=4", 1.3, 1.32),
            ("grid ssd k=2", 1.35, 1.2),
        )
    }
    summary = {"median_abs_error": 0.1, "max_abs_error": 0.13, "points": 3}
    (d / "closed_loop.json").write_text(
        json.dumps({"paired": {"speedup_vs_ar": speedups, "speedup_error": summary}})
    )


def test_every_figure_written_and_small(make_figures, tmp_path, capsys):
    _results(tmp_path)
    figs = tmp_path / "figures"
    assert make_figures.main(["--results", str(tmp_path), "--figures", str(figs)]) == 0
    for name in FIGURES:
        png = figs / name
        assert png.is_file() and 5_000 < png.stat().st_size < 150_000, name
    assert "wrote" in capsys.readouterr().out
    assert not (figs / "predicted_vs_measured_replay.png").exists()  # no replayed validation
    (tmp_path / "validation_replay.json").write_text((tmp_path / "validation.json").read_text())
    assert make_figures.main(["--results", str(tmp_path), "--figures", str(figs)]) == 0
    assert (figs / "predicted_vs_measured_replay.png").stat().st_size > 5_000


def test_without_measured_results_the_model_figures_still_come(make_figures, tmp_path, capsys):
    figs = tmp_path / "figures"
    assert make_figures.main(["--results", str(tmp_path / "none"), "--figures", str(figs)]) == 0
    assert (figs / "hit_rate_vs_fan_out.png").is_file() and (figs / "fan_out_shapes.png").is_file()
    assert "skipped the measured figures" in capsys.readouterr().out
