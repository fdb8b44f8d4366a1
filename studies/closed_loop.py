"""The whole loop on a real model pair: profile -> measure -> calibrate -> validate -> optimize -> run.

    python studies/closed_loop.py --pair embedded --out out/loop            # everything (~1-2 h)
    python studies/closed_loop.py --pair embedded --out out/loop --stages calibrate,validate
    python studies/closed_loop.py --pair smoke --prompts smoke8 --quick --split halves --out /tmp/loop  # minutes

Stages (each resumes from what ``--out`` already holds; rerun a stage by deleting its output):
  profile    python -m executor.profile -> latency.json
  measure    the calibration runs (AR, SD, SSD at a few points; ``--calib-repeats`` passes) on
             the calibration prompts, disjoint from the validation prompts (``--split``: odd and
             even positions, no source file on both sides; the sparse n-gram traces on
             ``--calib-fast-prompts`` of them if given) -> calib/*.jsonl, and the validation
             grid's runs (``--repeats`` passes) on the validation prompts -> validate/points,
             their passes interleaved, the calibration passes spread evenly over the
             validation passes (3 and 5: c0 v0 v1 c1 v2 v3 c2 v4), so that the profile and
             the runs it is judged against sample the same hours of the machine
  calibrate  python -m ssdsim.calibrate calib/*.jsonl --latency latency.json -> calibrated.json
  validate   python -m ssdsim.validate on the grid, validation prompts -> validate/validation.json
             (simulates; runs only what stage measure left out)
  optimize   python -m ssdsim.optimize --profile calibrated.json at B=1, T=0 -> optimize/policy.json
  shortlist  the optimizer's --shortlist fastest predicted candidates decoding the calibration
             prompts paired (studies/paired.py); the best measured is the loop's choice
             -> shortlist.json (without this stage the choice is the optimizer's first)
  run        the loop's choice, the paper default (k=7, uniform 3, jit) and the best measured
             grid points (any mode; SSD), run for real and interleaved ``--repeats`` times
             -> closed_loop.json
  paired     the choice (and the optimizer's first, if another), the paper default, AR and the
             grid points (B=1, T=0) decoding each validation prompt in turn in one process
             (studies/paired.py), ``--paired-rounds`` rounds: the verdict from per-round ratios
             -> closed_loop.json's ``paired``
  preset     (not in the default stages) the calibrated profile as ssdsim/presets/<pair>-cpu-calibrated.json
  traces     (not in the default stages) the calibration runs alone, all passes
Prints each stage's table; ``--results DIR`` copies the small outputs that studies/make_figures.py
reads (validation.json, closed_loop.json, timeline.jsonl, calibrated.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "studies")]

import loop_paired  # noqa: E402
import loop_shortlist  # noqa: E402
import loop_stages as st  # noqa: E402

STAGES = (
    "profile",
    "measure",
    "calibrate",
    "validate",
    "optimize",
    "shortlist",
    "run",
    "paired",
    "preset",
    "traces",
)
DEFAULT_STAGES = STAGES[: STAGES.index("preset")]
STAGE_FUNCS = {
    "profile": st.stage_profile,
    "measure": st.stage_measure,
    "traces": st.stage_traces,
    "calibrate": st.stage_calibrate,
    "validate": st.stage_validate,
    "optimize": st.stage_optimize,
    "shortlist": loop_shortlist.stage_shortlist,
    "run": st.stage_run,
    "paired": loop_paired.stage_paired,
    "preset": st.stage_preset,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pair", default="embedded")
    ap.add_argument(
        "--prompts",
        default="code64",
        help="prompt set split into calibration and validation prompts",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "loop")
    ap.add_argument("--stages", default=",".join(DEFAULT_STAGES))
    ap.add_argument("--num-prompts", type=int, default=8, help="prompts per run (default 8)")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument(
        "--repeats", type=int, default=2, help="validation passes and closed-loop runs per policy"
    )
    ap.add_argument("--n-trials", type=int, default=300, help="optimizer trials")
    ap.add_argument(
        "--k-max",
        type=int,
        default=8,
        help="largest lookahead the optimizer tries (default 8: the calibration traces' deepest)",
    )
    ap.add_argument(
        "--calib-fast-prompts",
        type=int,
        default=0,
        help="calibration prompts of the sparse fast-fallback traces (default: --num-prompts)",
    )
    ap.add_argument(
        "--calib-repeats",
        type=int,
        default=2,
        help="passes over the calibration points, one after the other (default 2: one pass "
        "bakes the machine's load at that moment into the profile)",
    )
    ap.add_argument(
        "--split",
        choices=("interleaved", "halves"),
        default="interleaved",
        help="validation prompts from the set's even positions and calibration prompts from its "
        "odd ones (default), or the first and second halves",
    )
    ap.add_argument(
        "--shortlist",
        type=int,
        default=4,
        help="optimizer candidates stage shortlist measures (default 4)",
    )
    ap.add_argument(
        "--shortlist-rounds", type=int, default=2, help="rounds of stage shortlist (default 2)"
    )
    ap.add_argument(
        "--paired-rounds", type=int, default=5, help="rounds of the paired stage (default 5)"
    )
    ap.add_argument("--quick", action="store_true", help="tiny grid and runs (plumbing check)")
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="seconds each run waits at most for a quiet machine (0: never); default 60",
    )
    ap.add_argument("--retries", type=int, default=1, help="reruns of a disturbed run")
    ap.add_argument(
        "--profile-args",
        default="",
        help="extra python -m executor.profile flags, e.g. '--batch-sizes 1,2,4 --rounds 5'",
    )
    ap.add_argument("--results", type=Path, help="copy the small outputs for make_figures here")
    args = ap.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    bad = [s for s in stages if s not in STAGES]
    if bad:
        ap.error(f"--stages: unknown {bad}; expected a subset of {','.join(STAGES)}")
    for flag in ("calib_repeats", "shortlist", "shortlist_rounds", "paired_rounds"):
        if getattr(args, flag) < 1:
            ap.error(f"--{flag.replace('_', '-')}: expected at least 1, got {getattr(args, flag)}")
    cfg = st.LoopConfig(
        pair=args.pair,
        prompts=args.prompts,
        out=args.out,
        num_prompts=2 if args.quick else args.num_prompts,
        max_new_tokens=16 if args.quick else args.max_new_tokens,
        repeats=1 if args.quick else args.repeats,
        n_trials=30 if args.quick else args.n_trials,
        quick=args.quick,
        quiet_wait_s=0.0 if args.quick else args.quiet_wait,
        retries=0 if args.quick else args.retries,
        profile_args=tuple(args.profile_args.split()),
        k_max=args.k_max,
        paired_rounds=1 if args.quick else args.paired_rounds,
        calib_fast_prompts=0 if args.quick else args.calib_fast_prompts,
        split=args.split,
        calib_repeats=1 if args.quick else args.calib_repeats,
        shortlist=2 if args.quick else args.shortlist,
        shortlist_rounds=1 if args.quick else args.shortlist_rounds,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    st.split_prompts(cfg)
    for stage in stages:
        print(f"\n== {stage} ==", flush=True)
        STAGE_FUNCS[stage](cfg)
    if args.results:
        args.results.mkdir(parents=True, exist_ok=True)
        for src, name in st.result_files(cfg):
            if src.is_file():
                shutil.copyfile(src, args.results / name)
                print(f"copied {src} -> {args.results / name}")
    summary = args.out / "closed_loop.json"
    if summary.is_file():
        done = json.loads(summary.read_text())
        for part in (done, done.get("paired", {})):
            if "verdict" in part:
                print(json.dumps(part["verdict"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
