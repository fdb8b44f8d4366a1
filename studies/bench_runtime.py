"""Runtime benchmark: our AR vs transformers' generate, and SD speedup over AR for k = 1..8 at B=1 and B=8.

One run, the same prompts for every mode, greedy, EOS ignored, one torch thread by default.
Modes are interleaved prompt by prompt (batch by batch at B=8) so that the load drift of a
shared machine falls on all of them alike. Throughput is decode-only (prefill excluded) for
every row: for ``generate`` the clock starts when its first token is out (a StoppingCriteria
records the time of every step). tok/s/seq is the mean over sequences; batch tok/s is all
decode tokens over all decode time; "vs AR" is the batch rate over AR's at the same B.

    python studies/bench_runtime.py                      # embedded pair, code8 prompts
    python studies/bench_runtime.py --pair smoke --max-new-tokens 64

Without the embedded pair (or prompt set) it falls back to a random-init pair of the same shape
and random prompts, and says so. Ends with one JSON line: ``ar`` and ``hf_generate`` (tokens/s
at B=1) and per batch size ``b1``/``b8`` every mode's rates and speedup over AR. Not a test:
numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from executor.engines.ar import AREngine
from executor.engines.common import Sampling, generate
from executor.engines.sd import SDEngine
from executor.loader import load_tokenizer, resolve_pair
from executor.model.decoder import Decoder
from executor.prompts import load_prompt_ids

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
        pair = resolve_pair(args.pair)
        target_dir, draft_dir, note = pair.target_dir, pair.draft_dir, f"pair {pair.name}"
        vocab = pair.vocab_size
        try:
            ids = load_prompt_ids(
                args.prompts,
                pair_name=pair.name,
                vocab_size=vocab,
                tokenizer=lambda: load_tokenizer(pair),
                num_prompts=args.num_prompts,
            )
            note += f", prompts {args.prompts}"
        except ValueError as exc:
            log.warning("prompt set %s unusable (%s): random prompts", args.prompts, exc)
            ids, note = None, note + ", random prompts"
    except ValueError as exc:
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


class HFGenerate:
    """transformers' greedy generate on the target; decode-only timing from a per-step clock."""

    def __init__(self, target_dir: Path) -> None:
        from transformers import AutoModelForCausalLM

        self.model = AutoModelForCausalLM.from_pretrained(target_dir, dtype=torch.float32).eval()

    def run(self, prompt: list[int], new_tokens: int) -> tuple[int, float, list[int]]:
        """(decode tokens, decode seconds, generated ids) for one prompt."""
        from transformers import StoppingCriteria, StoppingCriteriaList

        times: list[float] = []

        class StepClock(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                times.append(
                    time.perf_counter()
                )  # after every new token, the first (prefill) one included
                return torch.zeros(input_ids.shape[0], dtype=torch.bool)

        with torch.inference_mode():
            out = self.model.generate(
                torch.tensor([prompt]),
                max_new_tokens=new_tokens,
                eos_token_id=None,
                do_sample=False,
                pad_token_id=0,
                stopping_criteria=StoppingCriteriaList([StepClock()]),
            )
        return len(times) - 1, times[-1] - times[0], out[0, len(prompt) :].tolist()


@dataclass
class Tally:
    """Decode tokens and seconds summed over runs, per-sequence rates, accepted lengths."""

    tokens: int = 0
    seconds: float = 0.0
    seq_rates: list[float] = field(default_factory=list)
    accepted: list[float] = field(default_factory=list)

    def add_result(self, result) -> None:
        s = result.summary
        self.tokens += s.generated_tokens
        self.seconds += s.decode_s
        self.seq_rates.append(s.tokens_per_s)
        self.accepted.append(s.mean_accepted_len)

    @property
    def batch_rate(self) -> float:
        return self.tokens / self.seconds

    @property
    def seq_rate(self) -> float:
        return sum(self.seq_rates) / len(self.seq_rates)


def measure(
    engines: dict, hf: HFGenerate | None, prompts: list[list[int]], batch_size: int, args
) -> dict[str, Tally]:
    """Every mode on every chunk of batch_size prompts, modes interleaved chunk by chunk, ``repeats`` times.

    Interleaving spreads the machine's load drift evenly over the modes being compared.
    """
    tallies = {name: Tally() for name in (["hf_generate"] if hf else []) + list(engines)}
    for _ in range(args.repeats):
        for lo in range(0, len(prompts), batch_size):
            chunk = prompts[lo : lo + batch_size]
            if hf is not None:
                tokens, seconds, _ = hf.run(chunk[0], args.max_new_tokens)
                tallies["hf_generate"].tokens += tokens
                tallies["hf_generate"].seconds += seconds
                tallies["hf_generate"].seq_rates.append(tokens / seconds)
            for name, engine in engines.items():
                tallies[name].add_result(
                    generate(
                        engine,
                        chunk,
                        batch_size=batch_size,
                        max_new_tokens=args.max_new_tokens,
                        sampling=Sampling(),
                    )
                )
    return tallies


def check_outputs(engines: dict, hf: HFGenerate, prompts: list[list[int]], new_tokens: int) -> None:
    """Warm every engine up and check greedy outputs agree with generate on the first prompt."""
    _, _, want = hf.run(prompts[0], new_tokens)
    for name, engine in engines.items():
        got = generate(
            engine, prompts[:1], batch_size=1, max_new_tokens=new_tokens, sampling=Sampling()
        ).outputs[0]
        if got != want:
            log.warning("%s output differs from generate's on prompt 0", name)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pair", default="embedded")
    p.add_argument("--prompts", default="code8")
    p.add_argument("--num-prompts", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--ks", default="1,2,3,4,5,6,7,8")
    p.add_argument(
        "--batch-sizes", default="1,8", help="comma list; include 1 for ar/hf_generate in the JSON"
    )
    p.add_argument(
        "--repeats", type=int, default=1, help="passes over the prompts (modes interleaved)"
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def report_batch(b: int, tallies: dict[str, Tally]) -> dict[str, dict[str, float]]:
    """Print one table block for batch size b; return its JSON part."""
    base = tallies["ar"].batch_rate
    for name, t in tallies.items():
        acc = (
            f"{sum(t.accepted) / len(t.accepted):9.2f}" if t.accepted and name != "ar" else " " * 9
        )
        print(
            f"{name:>12} {b:>3} {t.seq_rate:>10.1f} {t.batch_rate:>12.1f} {acc} {t.batch_rate / base:>7.2f}"
        )
    return {
        name: {
            "tokens_per_s": t.seq_rate,
            "batch_tokens_per_s": t.batch_rate,
            "speedup_vs_ar": t.batch_rate / base,
        }
        for name, t in tallies.items()
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        target_dir, draft_dir, prompts, note = load_setup(args, Path(tmp))
        target, draft = Decoder.from_dir(target_dir), Decoder.from_dir(draft_dir)
        hf = HFGenerate(target_dir)
    engines = {"ar": AREngine(target, Sampling())}
    engines |= {
        f"sd k={k}": SDEngine(target, draft, Sampling(), int(k)) for k in args.ks.split(",")
    }
    lengths = [len(p) for p in prompts]
    print(
        f"# {note}; {len(prompts)} prompts of {min(lengths)}-{max(lengths)} tokens, {args.max_new_tokens} new "
        f"tokens, greedy, {args.threads} thread(s), {args.repeats} pass(es), modes interleaved"
    )
    check_outputs(engines, hf, prompts, 16)
    result: dict[str, object] = {
        "note": note,
        "threads": args.threads,
        "max_new_tokens": args.max_new_tokens,
    }
    print(
        f"{'mode':>12} {'B':>3} {'tok/s/seq':>10} {'batch tok/s':>12} {'accepted':>9} {'vs AR':>7}"
    )
    for b in (int(x) for x in args.batch_sizes.split(",")):
        tallies = measure(engines, hf if b == 1 else None, prompts, b, args)
        result[f"b{b}"] = report_batch(b, tallies)
        if b == 1:
            result["ar"], result["hf_generate"] = (
                tallies["ar"].seq_rate,
                tallies["hf_generate"].seq_rate,
            )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
