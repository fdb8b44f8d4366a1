"""The stages of studies/closed_loop.py (see its docstring): each reads and writes under cfg.out.

The executor always runs in subprocesses (``python -m executor.run``, ``python -m
executor.profile``), one run at a time, so that its two processes have the machine's two cores.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ssdsim.calibrate.cli import main as calibrate_main
from ssdsim.optimize.cli import main as optimize_main
from ssdsim.policy import Policy, paper_default, uniform_ssd
from ssdsim.profile import load_profile
from ssdsim.trace import read_trace
from ssdsim.validate.cli import build_parser as validate_parser
from ssdsim.validate.cli import check as validate_check
from ssdsim.validate.cli import main as validate_main
from ssdsim.validate.compare import predict, trace_workload
from ssdsim.validate.grid import Point, pass_order
from ssdsim.validate.runner import ROOT, RunSettings, measure
from ssdsim.workload import Workload, read_prompt_records


@dataclass(frozen=True)
class LoopConfig:
    pair: str
    prompts: str
    out: Path
    num_prompts: int
    max_new_tokens: int
    repeats: int
    n_trials: int
    quick: bool = False
    quiet_wait_s: float = 60.0  # per run: wait this long at most for a quiet machine (0: never)
    retries: int = 1  # reruns of a run other processes disturbed
    profile_args: tuple[str, ...] = ()  # extra python -m executor.profile flags (grid axes)
    k_max: int = 8  # the optimizer searches the lookaheads the calibration traces cover
    # prompts of the sparse fast-fallback calibration traces (0: num_prompts)
    calib_fast_prompts: int = 0
    paired_rounds: int = 5  # rounds of the paired comparison (stage paired)
    # grid points (B=1, T=0; best by validation first) the paired stage re-measures (0: all)
    paired_grid: int = 0
    split: str = "interleaved"  # how the prompt set splits (see split_prompts)
    shortlist: int = 4  # optimizer candidates stage shortlist measures (studies/loop_shortlist.py)
    shortlist_rounds: int = 2  # rounds of its paired measurement
    calib_repeats: int = 2  # passes over the calibration points (stage traces; as the CLI)

    @property
    def valid_prompts(self) -> Path:
        return self.out / "prompts_valid.jsonl"

    @property
    def calib_prompts(self) -> Path:
        return self.out / "prompts_calib.jsonl"

    @property
    def profile(self) -> Path:
        return self.out / "calibrated.json"

    @property
    def grid_profile(self) -> Path:
        """The first calibration's profile: it sets the grid's geometric fan-outs for good."""
        return self.out / "grid_profile.json"

    def settings(self, prompts: Path) -> RunSettings:
        return RunSettings(
            self.pair,
            str(Path(prompts).resolve()),  # the cache key: the same file from any directory
            self.num_prompts,
            self.max_new_tokens,
            quiet_cores=0.5 if self.quiet_wait_s > 0 else None,
            retries=self.retries,
            quiet_timeout_s=self.quiet_wait_s,
        )


def split_prompts(cfg: LoopConfig) -> None:
    """Validation and calibration prompts, disjoint, from ``cfg.split`` of the prompt set.

    ``interleaved`` (default): validation from the even positions, calibration from the odd
    ones less any prompt cut from a source file a validation prompt was cut from (a set
    ordered by file, like ``code64``, then gives both sides the same mix of files);
    ``halves``: validation from the first half, calibration from the second (the split of the
    loops before stop 12: the second half of ``code64`` repeats itself more than the first).
    The validation file holds ``num_prompts`` prompts, the calibration file
    ``max(num_prompts, calib_fast_prompts)`` (the n-gram speculator's acceptance varies much
    from prompt to prompt: its traces may use more of them); a file is never shortened (traces
    already made read their prompt lengths from it; runs take the first ``num_prompts``).
    """
    recs = read_prompt_records(cfg.prompts)
    if cfg.split == "halves":
        valid, calib = recs[: len(recs) // 2], recs[len(recs) // 2 :]
    elif cfg.split == "interleaved":
        valid = recs[0::2]
        used = {r["source"] for r in valid if "source" in r}
        calib = [r for r in recs[1::2] if r.get("source") is None or r["source"] not in used]
    else:
        raise ValueError(f"split: expected 'interleaved' or 'halves', got {cfg.split!r}")
    n_calib = max(cfg.num_prompts, cfg.calib_fast_prompts)
    for path, part, n in (
        (cfg.valid_prompts, valid, cfg.num_prompts),
        (cfg.calib_prompts, calib, n_calib),
    ):
        if len(part) < n:
            raise ValueError(
                f"{cfg.prompts}: the {cfg.split} split leaves {len(part)} prompts for "
                f"{path.name}, expected at least {n}"
            )
        lines = [json.dumps(r) for r in part[:n]]
        old = path.read_text().splitlines() if path.is_file() else []
        if len(old) < len(lines):
            path.write_text("\n".join(lines) + "\n")


def _ssd_available() -> bool:
    proc = subprocess.run(
        [sys.executable, "-m", "executor.run", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    return "ssd" in proc.stdout


def stage_profile(cfg: LoopConfig) -> None:
    out = cfg.out / "latency.json"
    if out.is_file():
        print(f"{out} exists")
        return
    argv = [sys.executable, "-m", "executor.profile", "--pair", cfg.pair, "-o", str(out)]
    argv += ["--quick"] if cfg.quick else list(cfg.profile_args)
    subprocess.run(argv, check=True, cwd=ROOT)


def sparse_fast_ssd(k: int) -> Policy:
    """SSD whose tree almost never hits (one branch after a full acceptance; one at index 0
    after a miss): nearly every step verifies the fast speculator's proposals."""
    return Policy(
        mode="ssd",
        k=k,
        fan_out=(0,) * k + (1,),
        fan_out_miss=(1,) + (0,) * k,
        fallback="fast",
    )


CALIB_B8 = 8  # the largest batch the calibration runs (bench_executor's second batch size)


def calibration_points(ssd: bool) -> list[Point]:
    """Runs whose traces calibrate: AR and SD at B 1 and 4, T 0 and 1 (SD also at k=8, for the
    acceptance of deep positions and, beside k=4, SD's fixed drafting seconds per step); SSD jit, fast and C < 1 (and k=8 jit: cut trees);
    SSD at k=8 with a sparse tree and fast misses at T 0 and 1, so that the fast speculator's
    acceptance at every depth is measured on every kind of step, not only after the draft's
    misses (a first closed loop without them chose such a policy on extrapolated acceptance:
    predicted 248.9 tokens/s, measured 187.6). At B=8 (greedy): AR, SD k=2 and SSD k=4 fast,
    so that batch-8 forwards are scaled by runs, not extrapolated from B=4 (a preset without
    them over-predicted AR and SD at B=8 by ~25% and chose a B=8 policy 0.84x SD); SSD k=2 fast
    at B=1 (without it the loop under-predicted k=2 SSD by ~20%). Greedy SD at k=2 and 6 at B 1
    and 4, so that every verification width of the validation grid (3 to 9 tokens) is scaled by
    runs: the target's forward of 3 tokens runs another kernel path than 4 or more, and a
    scale interpolated from 1 and 5 tokens predicted SD k=2 at B=1 16-23% too fast (loop 13's
    first three passes, whose passes agreed within 2%). SSD k=4 jit at B=4 (greedy), so that
    jit's answer (``Profile.jit_answer_s``) is measured at B=4, not carried over from B=1
    (loop 14: the answered steps' link ran 0.48 ms past the others' at B=4, 0.13 ms at B=1).
    AR at T=1 (B 1 and 4): sampling's cost per step apart from its cost per row
    (``Profile.verify_sample_step_s``; SD's 5-36 rows alone left AR at T=1 6-9% too fast in
    loop 17). SSD k=4 jit at B=4, T=1: jit's sampling scale where up to four rows miss. SSD
    k=8 fast at B=4, T 0 and 1: the widest trees (108 rows a step) at both temperatures, so
    that sampling's cost per tree row is read off more than one tree (loop 18's k=4 pair read
    20 us a row, against 26-30 on the validation's k=6 and 8 trees; its SSD at B=4, T=1 ran
    ~10% slower than predicted) and the tree's scale at B=4 is not only M=15's."""
    pts = [Point(Policy(mode="ar"), b, 0.0) for b in (1, 4, CALIB_B8)]
    pts += [Point(Policy(mode="ar"), b, 1.0) for b in (1, 4)]
    pts += [Point(Policy(mode="sd", k=4), b, t) for b in (1, 4) for t in (0.0, 1.0)]
    pts += [Point(Policy(mode="sd", k=8), b, t) for b in (1, 4) for t in (0.0, 1.0)]
    pts.append(Point(Policy(mode="sd", k=2), CALIB_B8, 0.0))
    pts += [Point(Policy(mode="sd", k=k), b, 0.0) for k in (2, 6) for b in (1, 4)]
    if ssd:
        pts += [
            Point(uniform_ssd(4, 3, "jit"), 1, 0.0, "uniform"),
            Point(uniform_ssd(4, 3, "fast"), 4, 0.0, "uniform"),
            Point(uniform_ssd(4, 3, "jit"), 1, 1.0, "uniform"),
            Point(uniform_ssd(4, 3, "fast"), 4, 1.0, "uniform"),
            Point(uniform_ssd(4, 3, "jit", rescale=0.5), 1, 1.0, "uniform"),
            Point(uniform_ssd(8, 3, "jit"), 1, 0.0, "uniform"),
            Point(uniform_ssd(8, 3, "fast"), 1, 0.0, "uniform"),
            Point(sparse_fast_ssd(8), 1, 0.0, "sparse"),
            Point(sparse_fast_ssd(8), 1, 1.0, "sparse"),
            Point(uniform_ssd(2, 3, "fast"), 1, 0.0, "uniform"),
            Point(uniform_ssd(4, 3, "fast"), CALIB_B8, 0.0, "uniform"),
            Point(uniform_ssd(4, 3, "jit"), 4, 0.0, "uniform"),
            Point(uniform_ssd(4, 3, "jit"), 4, 1.0, "uniform"),
            Point(uniform_ssd(8, 3, "fast"), 4, 0.0, "uniform"),
            Point(uniform_ssd(8, 3, "fast"), 4, 1.0, "uniform"),
        ]
    return pts


def pass_prompts(cfg: LoopConfig, repeat: int) -> Path:
    """The calibration prompts of pass ``repeat``: the file rotated by repeat x num_prompts.

    A greedy run repeats itself token for token, so passes over the same prompts measure the
    timing again but nothing new about acceptance or coverage; rotated, three passes of 12
    runs each decode 27 calibration prompts (loop5's 12 accepted visibly more than the
    validation prompts: SSD hits 0.90 after a rejection against 0.82). A rotated file is
    written once and never rewritten (its runs' records name it)."""
    if repeat == 0:
        return cfg.calib_prompts
    path = cfg.out / f"prompts_calib_p{repeat}.jsonl"
    if not path.is_file():
        lines = cfg.calib_prompts.read_text().splitlines()
        shift = (repeat * cfg.num_prompts) % len(lines)
        path.write_text("\n".join(lines[shift:] + lines[:shift]) + "\n")
    return path


def traces_pass(cfg: LoopConfig, repeat: int, ssd: bool) -> None:
    """One pass over the calibration points (pass ``repeat``'s rotated prompts)."""
    settings = cfg.settings(pass_prompts(cfg, repeat))
    fast = dataclasses.replace(settings, num_prompts=max(cfg.num_prompts, cfg.calib_fast_prompts))
    big = dataclasses.replace(settings, num_prompts=2 * CALIB_B8)  # two full batches
    have = len(read_prompt_records(settings.prompts))
    for p in calibration_points(ssd):
        if p.batch_size == CALIB_B8 and have < 2 * CALIB_B8:
            print(
                f"{p.label:40s} r{repeat} skipped: {have} calibration prompts, B={CALIB_B8} needs {2 * CALIB_B8}"
            )
            continue
        s = fast if p.shape == "sparse" else settings  # the fast speculator's acceptance
        s = big if p.batch_size == CALIB_B8 else s
        rec = measure(p, s, cfg.out / "calib", repeat)
        print(
            f"{p.label:40s} r{repeat} {rec['measured']['tokens_per_s']:8.1f} tokens/s  "
            f"other processes {rec['foreign_cores'] or 0:.2f} cores"
        )


def stage_traces(cfg: LoopConfig) -> None:
    ssd = _ssd_available()
    if not ssd:
        print("executor.run has no --mode ssd yet: calibrating from AR and SD traces only")
    for repeat in range(cfg.calib_repeats):  # passes at different times: the load moves
        traces_pass(cfg, repeat, ssd)


def validation_pass(cfg: LoopConfig, repeat: int) -> None:
    """Run (or find cached) pass ``repeat`` of every validation point; simulates nothing.

    The points and run settings are the validation CLI's for ``_validate_argv(cfg)``, so
    stage validate later finds every run in its cache.
    """
    args = validate_parser().parse_args(_validate_argv(cfg))
    _, pts, settings, _ = validate_check(args)
    order = pass_order(pts, repeat, cfg.repeats)
    for p in tqdm(order, desc=f"validation pass {repeat}", unit="run"):
        measure(p, settings, args.out, repeat)


def measure_schedule(calib: int, valid: int) -> list[tuple[str, int]]:
    """The order of stage measure's passes: ("calib" | "valid", pass), the calibration passes
    spread evenly over the validation passes (3 and 5: c0 v0 v1 c1 v2 v3 c2 v4), so that
    both sample the whole stretch of time the loop measures."""
    order: list[tuple[str, int]] = []
    c = 0
    for v in range(valid):
        while c < calib and (valid == 1 or c * (valid - 1) <= v * max(calib - 1, 1)):
            order.append(("calib", c))
            c += 1
        order.append(("valid", v))
    order += [("calib", r) for r in range(c, calib)]
    return order


def stage_measure(cfg: LoopConfig) -> None:
    """Calibration and validation runs, their passes interleaved (``measure_schedule``).

    The profile is fitted on the calibration runs and judged against the validation runs: run
    an hour apart, the two see this shared machine at different speeds (loop 6: calibration
    passes from two sessions, validation 15% faster than its profile by the target's forwards),
    an offset no model can predict. Interleaved, both sample the same hours; spread evenly, not
    all calibration first (loop 15 ran its 3 calibration passes beside the first 3 of 5
    validation passes; the machine then sped up, and the last two validation passes ran at a
    median probe of 2.2 ms a target forward against 2.5 for the calibration). The validation
    grid needs a profile (its geometric fan-outs): without ``grid_profile.json`` the first
    calibration pass is calibrated before the first validation pass.
    """
    ssd = _ssd_available()
    if not ssd:
        print("executor.run has no --mode ssd yet: calibrating from AR and SD traces only")
    for kind, repeat in measure_schedule(cfg.calib_repeats, cfg.repeats):
        if kind == "calib":
            traces_pass(cfg, repeat, ssd)
            continue
        if not cfg.profile.is_file():
            stage_calibrate(cfg)
        validation_pass(cfg, repeat)


def stage_calibrate(cfg: LoopConfig) -> None:
    traces = sorted(str(p) for p in (cfg.out / "calib" / "traces").glob("*.jsonl"))
    lat = cfg.out / "latency.json"
    argv = [*traces, "-o", str(cfg.profile), "--name", f"{cfg.pair}-calibrated"]
    if lat.is_file():
        argv += ["--latency", str(lat)]
    if calibrate_main(argv) != 0:
        raise SystemExit("calibration failed")
    if not cfg.grid_profile.is_file():  # the first calibration fixes the validation grid
        shutil.copyfile(cfg.profile, cfg.grid_profile)


def _validate_argv(cfg: LoopConfig) -> list[str]:
    """``python -m ssdsim.validate`` arguments of the loop's validation."""
    argv = ["--profile", str(cfg.profile), "--pair", cfg.pair, "--prompts", str(cfg.valid_prompts)]
    if cfg.grid_profile.is_file():
        argv += ["--grid-profile", str(cfg.grid_profile)]
    argv += ["--max-new-tokens", str(cfg.max_new_tokens), "--out", str(cfg.out / "validate")]
    argv += ["--num-prompts", str(cfg.num_prompts)]
    argv += ["--repeats", str(cfg.repeats), "--quiet-wait", f"{cfg.quiet_wait_s:g}"]
    argv += ["--retries", str(cfg.retries)]
    if cfg.quick:
        argv.append("--quick")
    if not _ssd_available():
        argv += ["--modes", "ar,sd"]
    return argv


def stage_validate(cfg: LoopConfig) -> None:
    if validate_main(_validate_argv(cfg)) != 0:
        raise SystemExit("validation failed")


def workload(cfg: LoopConfig, batch_size: int = 1, temperature: float = 0.0) -> Workload:
    n = min(cfg.num_prompts, len(read_prompt_records(str(cfg.valid_prompts))))
    return Workload(
        batch_size=batch_size,
        temperature=temperature,
        output_len_tokens=cfg.max_new_tokens,
        prompts=str(cfg.valid_prompts),
        num_prompts=n,
        name="loop-valid",
    )


def stage_optimize(cfg: LoopConfig) -> None:
    for t in (0.0, 1.0):
        wl_path = workload(cfg, 1, t).save(cfg.out / f"workload_t{t:g}.json")
        out = cfg.out / f"optimize_t{t:g}"
        argv = [
            "--profile",
            str(cfg.profile),
            "--workload",
            str(wl_path),
            "--n-trials",
            str(cfg.n_trials),
            "--k-max",
            str(cfg.k_max),
        ]
        argv += [
            "--out",
            str(out),
            "--storage",
            str(cfg.out / "optuna.journal"),
            "--quiet",
            "--no-plots",
        ]
        if optimize_main(argv) != 0:
            raise SystemExit("optimizer failed")


def grid_at_b1_t0(cfg: LoopConfig, mode: str | None = None) -> dict[str, list[dict]]:
    """The validation's cached records at B=1, T=0 (of ``mode`` if given), by point key."""
    by_key: dict[str, list[dict]] = {}
    for path in sorted((cfg.out / "validate" / "points").glob("*_r*.json")):
        rec = json.loads(path.read_text())
        if rec["batch_size"] == 1 and rec["temperature"] == 0.0:
            if mode is None or rec["policy"]["mode"] == mode:
                by_key.setdefault(rec["key"].rsplit("_r", 1)[0], []).append(rec)
    if not by_key:
        raise SystemExit(f"no validation records at B=1, T=0 under {cfg.out / 'validate'}")
    return by_key


def _best_grid_point(cfg: LoopConfig, mode: str | None = None) -> Point:
    """The grid point (B=1, T=0; of ``mode`` if given) with the best measured tokens/s.

    Read from the validation's cached records (``validate/points``), median over repeats.
    """
    best = max(grid_at_b1_t0(cfg, mode).values(), key=median_rate)
    shape = "uniform" if "_uniform_" in best[0]["key"] else "geometric"
    return Point(Policy.from_dict(best[0]["policy"]), 1, 0.0, shape)


def median_rate(recs: list[dict], name: str = "tokens_per_s") -> float:
    return statistics.median(r["measured"][name] for r in recs)


def chosen_policy(cfg: LoopConfig) -> Policy:
    """The loop's choice at B=1, T=0: stage shortlist's pick when it ran, else the optimizer's."""
    shortlist = cfg.out / "shortlist.json"
    if shortlist.is_file():
        return Policy.from_dict(json.loads(shortlist.read_text())["choice"]["policy"])
    return Policy.load(cfg.out / "optimize_t0" / "policy.json")


def stage_run(cfg: LoopConfig) -> None:
    chosen = chosen_policy(cfg)
    hot = Policy.load(cfg.out / "optimize_t1" / "policy.json")
    pts = {
        "chosen": Point(chosen, 1, 0.0, "optimized"),
        "paper_default": Point(paper_default(), 1, 0.0, "uniform"),
        "best_grid": _best_grid_point(cfg),
        "ar": Point(Policy(mode="ar"), 1, 0.0),
        "ar_t1": Point(Policy(mode="ar"), 1, 1.0),
        "chosen_t1": Point(hot, 1, 1.0, "optimized"),
    }
    best_ssd = _best_grid_point(cfg, "ssd")
    if best_ssd.key != pts["best_grid"].key:
        pts["best_ssd_grid"] = best_ssd
    if hot.mode == "ssd" and hot.rescale != 1.0:  # the same policy without Saguaro sampling
        pts["chosen_t1_c1"] = Point(dataclasses.replace(hot, rescale=1.0), 1, 1.0, "optimized")
    recs: dict[str, list[dict]] = {n: [] for n in pts}
    settings = cfg.settings(cfg.valid_prompts)
    for r in range(cfg.repeats):
        for name, p in pts.items():
            recs[name].append(measure(p, settings, cfg.out / "closed", r))
    summary = _closed_summary(cfg, pts, recs)
    summary["choice_from"] = "shortlist" if (cfg.out / "shortlist.json").is_file() else "optimizer"
    path = cfg.out / "closed_loop.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    if "paired" in old:  # stage paired's part, when it ran first, is kept
        summary["paired"] = old["paired"]
    path.write_text(json.dumps(summary, indent=1))
    _write_timeline(recs["chosen"][0]["trace"], cfg.out / "timeline.jsonl")
    for name, row in summary["runs"].items():
        print(
            f"{name:14s} {row['policy']:60s} measured {row['tokens_per_s']:8.1f}  predicted {row['predicted_tokens_per_s']:8.1f}"
        )
    print(json.dumps(summary["verdict"], indent=1))


def _closed_summary(
    cfg: LoopConfig, pts: dict[str, Point], recs: dict[str, list[dict]]
) -> dict[str, Any]:
    prof = load_profile(cfg.profile)
    runs = {}
    for name, p in pts.items():
        pred = predict(prof, p.policy, trace_workload(recs[name][0]["trace"]))
        runs[name] = {
            "policy": p.policy.label(),
            "policy_json": p.policy.to_dict(),
            "temperature": p.temperature,
            "tokens_per_s": median_rate(recs[name]),
            "all_tokens_per_s": [r["measured"]["tokens_per_s"] for r in recs[name]],
            "hit_rate": recs[name][0]["measured"].get("hit_rate"),
            "predicted_tokens_per_s": pred["tokens_per_s"],
            "foreign_cores": [r.get("foreign_cores") for r in recs[name]],
        }
    ssd_name = "best_ssd_grid" if "best_ssd_grid" in runs else "best_grid"
    c, best, best_ssd, paper = (
        runs[n]["tokens_per_s"] for n in ("chosen", "best_grid", ssd_name, "paper_default")
    )
    verdict = {
        "chosen_over_best_grid": c / best,
        "chosen_over_best_ssd_grid": c / best_ssd,
        "chosen_over_paper_default": c / paper,
        "within_2pct_of_best_grid": c >= 0.98 * best,
        "within_2pct_of_best_ssd_grid": c >= 0.98 * best_ssd,
        "faster_than_paper_default": c > paper,
    }
    hot = runs["chosen_t1"]["policy_json"]
    saguaro = (  # only an SSD policy samples with Saguaro's rescale
        [
            {
                "temperature": 1.0,
                "rescale": hot["rescale"],
                "speedup_vs_ar": runs["chosen_t1"]["tokens_per_s"] / runs["ar_t1"]["tokens_per_s"],
            }
        ]
        if hot["mode"] == "ssd"
        else []
    )
    return {
        "chosen": runs["chosen"] | {"policy": pts["chosen"].policy.to_dict()},
        "runs": runs,
        "verdict": verdict,
        "saguaro": saguaro,
    }


def _write_timeline(trace_path: str, out: Path, steps: int = 40) -> None:
    """The first steps of a trace (header, steps, no summary): small enough to commit."""
    lines = Path(trace_path).read_text().splitlines()
    out.write_text("\n".join(lines[: steps + 1]) + "\n")
    read_trace(out)  # still a valid trace


def stage_preset(cfg: LoopConfig) -> None:
    """Ship the calibrated profile as the preset ``<pair>-cpu-calibrated`` (provenance kept)."""
    prof = load_profile(cfg.profile)
    name = f"{cfg.pair}-cpu-calibrated"
    prov = {**prof.provenance, "loop": {"out": str(cfg.out), "command": "studies/closed_loop.py"}}
    desc = (
        f"The {cfg.pair} pair on this project's 2-core CPU machine (one torch thread per process, "
        "each on its own core), calibrated by studies/closed_loop.py: latency grids from "
        "python -m executor.profile, scaled to the executor traces' load; acceptance, coverage "
        "and per-sequence spread from executor traces on held-out prompts (calibration prompts of "
        f"{cfg.prompts}, {cfg.split} split). {prof.description}"
    )
    out = ROOT / "ssdsim" / "presets" / f"{name}.json"
    dataclasses.replace(prof, name=name, description=desc, provenance=prov).save(out)
    print(f"wrote preset {out}")


def result_files(cfg: LoopConfig) -> list[tuple[Path, str]]:
    return [
        (cfg.out / "validate" / "validation.json", "validation.json"),
        (cfg.out / "closed_loop.json", "closed_loop.json"),
        (cfg.out / "shortlist.json", "shortlist.json"),
        (cfg.out / "timeline.jsonl", "timeline.jsonl"),
        (cfg.profile, "calibrated.json"),
        (cfg.out / "latency.json", "latency.json"),
    ]
