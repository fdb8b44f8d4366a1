"""Replay real T = 0 runs row by row and count what the replay gets wrong (should be nothing).

    python studies/replay_check.py out/loop21/replay_valid.json \\
        out/loop21/validate/traces/*_t0_r0.jsonl

For each executor trace at T = 0 (others are skipped): ``ssdsim.replay.check_trace``'s counts
(rows, emitted texts, accepted lengths, fast proposal counts and next-request hits replayed
differently from what the run did), then the totals. Never imports torch or the executor.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ssdsim.replay import check_trace, load_replay
from ssdsim.trace import read_trace

log = logging.getLogger("replay_check")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("replay", type=Path, help="replay JSON (python -m executor.replay)")
    ap.add_argument("traces", nargs="+", type=Path, help="executor traces of the same prompts")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    missing = [str(p) for p in [args.replay, *args.traces] if not p.is_file()]
    if missing:
        ap.error(f"no such file: {', '.join(missing)}")
    replay = load_replay(args.replay)
    total: dict[str, int] = {}
    for path in args.traces:
        trace = read_trace(path)
        if float(trace.header.workload.get("temperature", 0)) != 0:
            continue
        counts = check_trace(replay, trace)
        log.info("%s: %s", path.name, counts)
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
    print(f"total: {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
