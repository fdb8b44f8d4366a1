"""The draft's logic in-process (``LocalDraft``: the worker's own ``DraftSpeculator`` calls).

- Every draft proposal, cached (tree decode) or jit, equals the draft's own greedy continuation
  of the true context, recomputed from scratch with plain forwards: the branches see the right
  trunk prefix, positions and chain.
- jit decodes exactly the missed live rows, never the whole batch.
"""

from __future__ import annotations

import torch

from executor.engines.common import Sampling, generate
from executor.model.decoder import Decoder
from executor.ssd.engine import SSDEngine
from executor.ssd.link import LocalDraft
from executor.ssd.speculator import DraftSpeculator, spec_config
from ssdsim.policy import Policy

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
