"""A closed loop's paired measurement predicted again by another profile: no new runs.

Stage ``paired`` (studies/loop_paired.py) decodes the validation prompts with every policy in
turn and writes the measured rounds into ``closed_loop.json``, with the speedups over AR that
the loop's own profile predicted. A change to the calibrator or the simulator is judged on the
validation grid by re-simulating its saved runs (``python -m ssdsim.validate`` on a copy of the
loop's ``validate`` folder); this does the same for the paired policies, whose picks (one-branch
trees with fast misses) the grid does not run:

    python -m ssdsim.calibrate out/loop18/calib/traces/*.jsonl --latency out/loop18/latency.json -o P.json
    python studies/repredict_paired.py out/loop18/closed_loop.json --profile P.json
    python studies/repredict_paired.py out/loop21/closed_loop.json --profile P.json \
        --replay out/loop21/replay_valid.json      # T = 0 outcomes from the prompts' texts

prints, per policy, the measured speedup over AR (median of per-round ratios), the one the
loop predicted, the one ``--profile`` predicts and its error, then the median and max |error|
of both (``--json``: one JSON line at the end).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "studies")]

from loop_paired import paired_speedups  # noqa: E402

from ssdsim._schema import SchemaError, read_json  # noqa: E402
from ssdsim.policy import Policy  # noqa: E402
from ssdsim.profile import load_profile  # noqa: E402
from ssdsim.replay import Replay, load_replay  # noqa: E402
from ssdsim.validate.compare import predict  # noqa: E402
from ssdsim.workload import Workload  # noqa: E402

log = logging.getLogger("repredict_paired")


def load_paired(path: Path) -> dict[str, Any]:
    """``closed_loop.json``'s ``paired`` part, checked (clear error naming file and field)."""
    try:
        data = read_json(path, "closed loop")
    except SchemaError as exc:
        raise SystemExit(str(exc)) from exc
    paired = data.get("paired") if isinstance(data, dict) else None
    if not isinstance(paired, dict):
        raise SystemExit(f"{path}: no 'paired' part (stage paired has not run)")
    for field in ("policies", "prompts", "num_prompts", "max_new_tokens"):
        if field not in paired:
            raise SystemExit(f"{path}: paired.{field} missing")
    pols = paired["policies"]
    if "ar" not in pols:
        raise SystemExit(f"{path}: paired.policies has no 'ar' (the speedups are over AR)")
    for name, rec in pols.items():
        if not isinstance(rec, dict) or "policy" not in rec or "rounds" not in rec:
            raise SystemExit(f"{path}: paired.policies.{name}: expected 'policy' and 'rounds'")
    return paired


def paired_workload(paired: dict[str, Any]) -> Workload:
    """The workload stage paired decoded: B=1, greedy, its prompts and lengths."""
    return Workload(
        batch_size=1,
        temperature=0.0,
        output_len_tokens=int(paired["max_new_tokens"]),
        prompts=str(paired["prompts"]),
        num_prompts=int(paired["num_prompts"]),
        name="loop-valid",
    )


def repredict(
    paired: dict[str, Any], profile_path: str, replay: Replay | None = None
) -> dict[str, Any]:
    """Rows per policy (measured, loop's prediction, this profile's, error) and the summary
    (``replay``: outcomes replayed from the prompts' greedy texts, ``ssdsim.replay``)."""
    profile = load_profile(profile_path)
    wl = paired_workload(paired)
    pols = {n: Policy.from_dict(r["policy"]) for n, r in paired["policies"].items()}
    rates = {n: list(r["rounds"]) for n, r in paired["policies"].items()}
    predicted = {n: predict(profile, p, wl, replay=replay)["tokens_per_s"] for n, p in pols.items()}
    rows, summary = paired_speedups(rates, predicted)
    before = paired.get("speedup_vs_ar", {})
    for name, row in rows.items():
        row["label"] = paired["policies"][name].get("label", name)
        row["loop_predicted"] = before.get(name, {}).get("predicted")
    return {"rows": rows, "summary": summary, "loop_summary": paired.get("speedup_error")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("closed_loop", type=Path, help="a loop's closed_loop.json (stage paired ran)")
    ap.add_argument("--profile", required=True, help="profile JSON or preset name")
    ap.add_argument(
        "--replay",
        type=Path,
        help="greedy texts of the paired prompts (python -m executor.replay): replay the "
        "outcomes instead of sampling them",
    )
    ap.add_argument("--json", action="store_true", help="end with one JSON line of the result")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paired = load_paired(args.closed_loop)
    load_profile(args.profile)  # a bad profile fails before any simulation
    replay = load_replay(args.replay) if args.replay else None
    out = repredict(paired, args.profile, replay)
    lines = [f"{'policy':32s} {'measured':>8s} {'loop':>6s} {'now':>6s} {'error':>7s}"]
    for name, r in sorted(out["rows"].items(), key=lambda kv: -abs(kv[1]["error"])):
        loop = f"{r['loop_predicted']:.2f}" if r["loop_predicted"] is not None else "-"
        lines.append(
            f"{name[:32]:32s} {r['measured']:8.2f} {loop:>6s} {r['predicted']:6.2f} {r['error']:+7.1%}"
        )
    s, ls = out["summary"], out["loop_summary"] or {}
    lines.append(
        f"speedup over AR, paired: median |error| {s['median_abs_error']:.1%}, max "
        f"{s['max_abs_error']:.1%} over {s['points']} policies"
        + (
            f" (the loop's profile: {ls['median_abs_error']:.1%}, {ls['max_abs_error']:.1%})"
            if ls
            else ""
        )
    )
    log.info("\n".join(lines))
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
