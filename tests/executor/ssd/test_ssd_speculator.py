"""The draft's logic in-process (``LocalDraft``: the worker's own ``DraftSpeculator`` calls).

- Every draft proposal, cached (tree decode) or jit, equals the draft's own greedy continuation
  of the true context, recomputed from scratch with plain forwards: the branches see the right
  trunk prefix, positions and chain.
- jit decodes exactly the missed live rows, never the whole batch.
- A tree cut short after one step (the doorbell rang: the next request was waiting) still
  gives exactly the target's greedy output; its hits verify exactly one proposal each.
"""

from __future__ import annotations

import pytest
import torch

from executor.engines.ar import AREngine
from executor.engines.common import Sampling, generate
from executor.model.decoder import Decoder
from executor.ssd.engine import SSDEngine
from executor.ssd.link import LocalDraft
from executor.ssd.speculator import DraftSpeculator, spec_config
from ssdsim.policy import Policy
from tests.executor.ssd.ssd_checks import check_ranks_predict_hits

POLICY = Policy(mode="ssd", k=3, fan_out=(3, 2, 1, 2), fan_out_miss=(5, 2, 1, 0))


def _greedy_continuation(draft: Decoder, context: list[int], k: int) -> list[int]:
    cache = draft.new_cache(1, len(context) + k + 1)
    ids = list(context)
    for _ in range(k):
        logits = draft.forward(torch.tensor([ids]), torch.tensor([0]), cache, logits_at=-1)
        ids.append(int(logits.argmax(dim=-1)))
    return ids[len(context) :]


def _recording_link(draft: Decoder, max_batch: int) -> LocalDraft:
    link = LocalDraft(DraftSpeculator(draft, spec_config(POLICY, Sampling())), max_batch)
    link.calls = []
    request = link.request

    def recorded(req, step):
        resp = request(req, step)
        link.calls.append((req.live.tolist(), resp.cache_hit.tolist(), resp.tokens.tolist()))
        return resp

    link.request = recorded
    return link


def test_draft_proposals_are_its_greedy_continuations(pair_dirs, target, prompts32):
    draft = Decoder.from_dir(pair_dirs[1])
    prompts = prompts32[:8]
    link = _recording_link(draft, 4)
    result = generate(
        SSDEngine(target, link, POLICY, Sampling()),
        prompts,
        batch_size=4,
        max_new_tokens=24,
        sampling=Sampling(),
    )
    contexts = {i: [*p, result.outputs[i][0]] for i, p in enumerate(prompts)}
    checked = hits = 0
    with torch.inference_mode():
        for step, (live, hit, tokens) in zip(result.steps, link.calls, strict=True):
            first = step.seqs[0].seq - step.seqs[0].seq % 4  # the batch's first sequence
            for o in step.seqs:
                row = o.seq - first
                assert live[row]
                assert tokens[row] == _greedy_continuation(draft, contexts[o.seq], 3)
                checked += 1
                hits += hit[row]
                contexts[o.seq].extend(o.token_ids)
    assert checked == sum(len(s.seqs) for s in result.steps) and 0 < hits < checked


def test_jit_decodes_only_the_missed_rows(pair_dirs, target, prompts32):
    draft = Decoder.from_dir(pair_dirs[1])
    link = _recording_link(draft, 4)
    spec = link.spec
    jit_rows = []
    jit = spec._jit

    def spy(req, rows, q_out):
        jit_rows.append(rows.tolist())
        return jit(req, rows, q_out)

    spec._jit = spy
    generate(
        SSDEngine(target, link, POLICY, Sampling()),
        prompts32[:8],
        batch_size=4,
        max_new_tokens=24,
        sampling=Sampling(),
    )
    missed = [
        [r for r, (lv, h) in enumerate(zip(live, hit, strict=True)) if lv and not h]
        for live, hit, _ in link.calls
    ]
    assert jit_rows == [m for m in missed if m]
    assert any(0 < len(m) < 4 for m in missed)  # some steps mixed hits and misses


@pytest.mark.parametrize(("fallback", "batch_size"), [("jit", 1), ("jit", 4), ("fast", 4)])
def test_tree_cut_after_one_step_stays_lossless(pair_dirs, target, prompts32, fallback, batch_size):
    draft = Decoder.from_dir(pair_dirs[1])
    policy = Policy(
        mode="ssd", k=3, fan_out=POLICY.fan_out, fan_out_miss=POLICY.fan_out_miss, fallback=fallback
    )
    stops = []

    def stop() -> bool:  # asked before tree steps 2..k: the next request is always waiting
        stops.append(True)
        return True

    link = LocalDraft(DraftSpeculator(draft, spec_config(policy, Sampling())), 4, stop=stop)
    prompts = prompts32[:8]
    run = dict(batch_size=batch_size, max_new_tokens=24, sampling=Sampling())
    result = generate(SSDEngine(target, link, policy, Sampling()), prompts, **run)
    assert result.outputs == generate(AREngine(target, Sampling()), prompts, **run).outputs
    outcomes = [o for s in result.steps for o in s.seqs]
    hits = [o for o in outcomes if o.cache_hit]
    assert stops and hits and all(o.proposed == 1 for o in hits)
    assert any(o.accepted_len == 1 for o in hits)  # the next glue follows a fully accepted hit
    if fallback == "jit":
        assert all(o.proposed == 3 for o in outcomes if not o.cache_hit)
    check_ranks_predict_hits(result.steps, policy)
    assert result.summary.extra["draft_tree_depth_mean"] == 1.0
