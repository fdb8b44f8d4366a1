"""Train another draft shape against the built embedded target and report its agreement.

    python studies/zoo_draft_variant.py NAME HIDDEN,LAYERS,INTERMEDIATE,HEADS [--threads N]

Runs the full recipe's draft phases (training on data, then distillation from the saved
``embedded`` target) for the given shape, saves the draft to ``out/draft_variants/NAME`` and
prints one ``RESULT NAME {json}`` line with the same metrics as the build's summary.json
(teacher-forced on 32,768 held-out tokens; agreement on the target's greedy continuations of
``code64``). About 10 minutes on one thread. Used to compare draft shapes without rebuilding the
target (e.g. ``d192x1 192,1,512,3``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time

import torch
from transformers import AutoModelForCausalLM

from executor.zoo import builder, evaluate, prompts, train
from executor.zoo.recipe import FULL, ModelShape


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("shape", help="HIDDEN,LAYERS,INTERMEDIATE,HEADS")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    shape = ModelShape(*(int(x) for x in args.shape.split(",")))
    torch.set_num_threads(args.threads)
    built = builder.read_built(FULL.pair)
    if built is None:
        parser.error("the embedded pair is not built: python -m executor.zoo build")
    recipe = dataclasses.replace(FULL, draft=shape)
    t0 = time.time()
    data = builder._prepare(recipe)
    target = AutoModelForCausalLM.from_pretrained(str(built.target_dir)).eval()
    draft = builder._new_model(recipe, recipe.draft, data, 2)
    train.run_phase(draft, data.train_stream, recipe.draft_train, 3, "draft", train.lm_loss(draft))
    loss = train.distill_loss(draft, target, recipe.distill_temperature)
    train.run_phase(draft, data.train_stream, recipe.draft_distill, 4, "distill", loss)
    train_s = time.time() - t0
    draft.save_pretrained(f"out/draft_variants/{args.name}")
    out = evaluate.teacher_forced(target, draft, data.held_stream, 32768, 512)
    ps = prompts.make_prompts(data.corpus.held_out, recipe.prompt_sets[0], data.tokenizer)
    ids = [list(p.ids) for p in ps]
    conts = evaluate.greedy_continuations(target, ids, 256, 16, data.tokenizer.eos_token_id)
    refs = [list(p.reference_ids) for p in ps]
    out.update(evaluate.continuation_agreement(draft, ids, conts, refs))
    out["train_s"] = train_s
    print("RESULT", args.name, json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
