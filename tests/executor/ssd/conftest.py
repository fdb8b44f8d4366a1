"""Fixtures of the SSD tests: a target and a close draft, prompts, and a running draft worker.

- ``pair_dirs`` (session): a random-init Llama target (vocabulary 256, peaked logits) and a
  perturbed copy as its draft (accepts some proposals, rejects others), saved with
  ``save_pretrained``.
- ``prompts32`` (session): 32 prompts of 2..24 tokens.
- ``target`` (session): our Decoder of the target.
- ``start_link`` (function): ``start_link(policy, sampling, max_batch, **kw)`` starts a
  two-process ``RemoteDraft`` for that policy (CPU, two cores) and closes it after the test.
"""

from __future__ import annotations

import pytest
import torch

from executor.model.decoder import Decoder
from executor.ssd.devices import plan_devices
from executor.ssd.remote import RemoteDraft
from executor.ssd.speculator import spec_config
from tests.executor.helpers import save_perturbed_copy, save_random_model

VOCAB = 256


@pytest.fixture(scope="session")
def pair_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssd_pair")
    target = save_random_model(root / "target", "llama", seed=31, init_std=0.3, vocab_size=VOCAB)
    return target, save_perturbed_copy(target, root / "draft", noise=0.03, seed=32)


@pytest.fixture(scope="session")
def prompts32():
    g = torch.Generator().manual_seed(33)
    lengths = torch.randint(2, 25, (32,), generator=g)
    return [torch.randint(3, VOCAB, (int(n),), generator=g).tolist() for n in lengths]


@pytest.fixture(scope="session")
def target(pair_dirs):
    return Decoder.from_dir(pair_dirs[0])


def make_link(draft_dir, policy, sampling, max_batch, **kw) -> RemoteDraft:
    """A two-process draft link on two CPU cores for this policy and sampling."""
    kw.setdefault("handshake_pings", 20)
    return RemoteDraft(
        draft_dir,
        spec_config(policy, sampling),
        plan_devices("cpu"),
        max_batch=max_batch,
        vocab_size=VOCAB,
        **kw,
    )


@pytest.fixture
def start_link(pair_dirs):
    links = []

    def start(policy, sampling, max_batch, **kw):
        link = make_link(pair_dirs[1], policy, sampling, max_batch, **kw)
        links.append(link)
        return link

    yield start
    for link in links:
        link.close()
