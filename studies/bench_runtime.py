"""Runtime benchmark: our AR vs transformers' generate, and SD speedup over AR for k = 1..8 at B=1 and B=8.

One run, the same prompts for every mode, greedy, EOS ignored, one torch thread by default.
Throughput is decode-only (prefill excluded) for every row of the table: for ``generate`` the
clock starts when its first token is out (a StoppingCriteria records the time of every step).

    python studies/bench_runtime.py                      # embedded pair, code8 prompts
    python studies/bench_runtime.py --pair smoke --max-new-tokens 64

Without the embedded pair (or prompt set) it falls back to a random-init pair of the same shape
and random prompts, and says so. Ends with one JSON line holding at least ``ar`` and
``hf_generate`` (tokens/s at B=1). Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from executor.engines.ar import AREngine
from executor.engines.common import Sampling, generate
from executor.engines.sd import SDEngine
from executor.model.decoder import Decoder
from executor.prompts import load_prompt_ids
from executor.run import RunError, resolve_model_pair

log = logging.getLogger("bench_runtime")

# Shapes of the embedded pair (executor.zoo recipe "full"), for the random fallback.
EMBEDDED_SHAPES = {
    "target": dict(
        hidden_size=384,
        num_hidden_layers=6,
        intermediate_size=1024,
        num_attention_heads=6,
        num_key_value_heads=6,
    ),
    "draft": dict(
        hidden_size=192,
        num_hidden_layers=2,
        intermediate_size=512,
        num_attention_heads=3,
        num_key_value_heads=3,
    ),
}


def random_pair(root: Path) -> tuple[Path, Path]:
    from transformers import LlamaConfig, LlamaForCausalLM

    dirs = []
    for i, role in enumerate(("target", "draft")):
        torch.manual_seed(i)
        cfg = LlamaConfig(
            vocab_size=4096,
            max_position_embeddings=2048,
            tie_word_embeddings=True,
            **EMBEDDED_SHAPES[role],
        )
        LlamaForCausalLM(cfg).save_pretrained(root / role)
        dirs.append(root / role)
    return dirs[0], dirs[1]


def load_setup(args: argparse.Namespace, tmp: Path) -> tuple[Path, Path, list[list[int]], str]:
    """Target and draft dirs, prompt ids, and a note on what was used."""
    try:
        pair = resolve_model_pair(args.pair)
        target_dir, draft_dir, note = pair.target_dir, pair.draft_dir, f"pair {pair.name}"
        vocab = json.loads((target_dir / "config.json").read_text())["vocab_size"]
        try:
            ids = load_prompt_ids(
                args.prompts,
                pair_name=pair.name,
                vocab_size=vocab,
                tokenizer=pair.tokenizer,
                num_prompts=args.num_prompts,
            )
            note += f", prompts {args.prompts}"
        except ValueError as exc:
            log.warning("prompt set %s unusable (%s): random prompts", args.prompts, exc)
            ids, note = None, note + ", random prompts"
    except (RunError, ValueError) as exc:
        log.warning(
            "pair %s unusable (%s): random-init pair of the embedded shapes", args.pair, exc
        )
        target_dir, draft_dir = random_pair(tmp)
        vocab, ids, note = (
            4096,
            None,
            "RANDOM-INIT pair of the embedded shapes (embedded pair not built), random prompts",
        )
    if ids is None:
        g = torch.Generator().manual_seed(args.seed)
        ids = [
            torch.randint(
                0, vocab, (int(torch.randint(64, 257, (1,), generator=g)),), generator=g
            ).tolist()
            for _ in range(args.num_prompts)
        ]
    return target_dir, draft_dir, ids, note


def hf_generate_tokens_per_s(
    target_dir: Path, prompts: list[list[int]], new_tokens: int
) -> tuple[float, list[list[int]]]:
    """transformers' greedy generate, one prompt at a time; decode-only tokens/s (mean over prompts)."""
    from transformers import AutoModelForCausalLM, StoppingCriteria, StoppingCriteriaList

    class StepClock(StoppingCriteria):
        def __init__(self) -> None:
            self.times: list[float] = []

        def __call__(self, input_ids, scores, **kwargs):
            self.times.append(time.perf_counter())
            return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    model = AutoModelForCausalLM.from_pretrained(target_dir, dtype=torch.float32).eval()
    rates, outputs = [], []
    with torch.inference_mode():
        model.generate(
            torch.tensor([prompts[0]]), max_new_tokens=4, do_sample=False, pad_token_id=0
        )  # warm-up
        for p in prompts:
            clock = StepClock()
            out = model.generate(
                torch.tensor([p]),
                max_new_tokens=new_tokens,
                eos_token_id=None,
                do_sample=False,
                pad_token_id=0,
                stopping_criteria=StoppingCriteriaList([clock]),
            )
            rates.append((len(clock.times) - 1) / (clock.times[-1] - clock.times[0]))
            outputs.append(out[0, len(p) :].tolist())
    return sum(rates) / len(rates), outputs


def ours(engine, prompts, batch_size: int, new_tokens: int):
    generate(
        engine, prompts[:batch_size], batch_size=batch_size, max_new_tokens=8, sampling=Sampling()
    )  # warm-up
    return generate(
        engine, prompts, batch_size=batch_size, max_new_tokens=new_tokens, sampling=Sampling()
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pair", default="embedded")
    p.add_argument("--prompts", default="code8")
    p.add_argument("--num-prompts", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--ks", default="1,2,3,4,5,6,7,8")
    p.add_argument("--batch-sizes", default="1,8")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    ks = [int(k) for k in args.ks.split(",")]
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        target_dir, draft_dir, prompts, note = load_setup(args, Path(tmp))
        target, draft = Decoder.from_dir(target_dir), Decoder.from_dir(draft_dir)
        print(
            f"# {note}; {len(prompts)} prompts of {min(map(len, prompts))}-{max(map(len, prompts))} tokens, {args.max_new_tokens} new tokens, greedy, {args.threads} thread(s)"
        )
        hf_rate, hf_out = hf_generate_tokens_per_s(target_dir, prompts, args.max_new_tokens)
    result: dict[str, object] = {
        "note": note,
        "hf_generate": hf_rate,
        "threads": args.threads,
        "max_new_tokens": args.max_new_tokens,
    }
    print(
        f"{'mode':>8} {'B':>3} {'tok/s/seq':>10} {'batch tok/s':>12} {'accepted':>9} {'speedup':>8}"
    )
    print(f"{'hf gen':>8} {1:>3} {hf_rate:>10.1f} {hf_rate:>12.1f} {'':>9} {'':>8}")
    sd_table: dict[str, dict[str, float]] = {}
    for b in batch_sizes:
        ar = ours(AREngine(target, Sampling()), prompts, b, args.max_new_tokens)
        if b == 1 and ar.outputs != hf_out:
            log.warning("AR output differs from generate's (near-tie numerics?)")
        base = ar.summary.batch_tokens_per_s
        result[f"ar_b{b}"] = base
        if b == 1:
            result["ar"] = ar.summary.tokens_per_s
        print(
            f"{'ar':>8} {b:>3} {ar.summary.tokens_per_s:>10.1f} {base:>12.1f} {'':>9} {1.0:>8.2f}"
        )
        for k in ks:
            sd = ours(SDEngine(target, draft, Sampling(), k), prompts, b, args.max_new_tokens)
            s = sd.summary
            speedup = s.batch_tokens_per_s / base
            sd_table.setdefault(f"k{k}", {})[f"b{b}"] = speedup
            print(
                f"{'sd k=' + str(k):>8} {b:>3} {s.tokens_per_s:>10.1f} {s.batch_tokens_per_s:>12.1f} {s.mean_accepted_len:>9.2f} {speedup:>8.2f}"
            )
    result["sd_speedup"] = sd_table
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
