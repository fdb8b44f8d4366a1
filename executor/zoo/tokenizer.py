"""The shared byte-level BPE tokenizer of an embedded pair, trained with the `tokenizers` library.

Saved as a Hugging Face fast tokenizer (tokenizer.json + tokenizer_config.json), so
``AutoTokenizer.from_pretrained(dir)`` loads it. One special token, ``<|endoftext|>``, is bos,
eos and pad; it separates files in the training stream and is never added to prompts.
Imports tokenizers and transformers; no torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

EOS_TOKEN = "<|endoftext|>"
MODEL_MAX_LENGTH = 2048


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE over ``texts`` (deterministic: no sampling, ties broken by the trainer)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        model_max_length=MODEL_MAX_LENGTH,
    )


def encode_files(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> list[int]:
    """One token stream: each file's ids followed by the eos id (the file separator)."""
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for enc in tokenizer.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False):
        stream.extend(enc.ids)
        stream.append(eos)
    return stream


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, *dirs: Path) -> None:
    """Write tokenizer.json and a tokenizer_config.json that any transformers >= 4.45 reads."""
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": EOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "pad_token": EOS_TOKEN,
        "model_max_length": MODEL_MAX_LENGTH,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
    }
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        tokenizer.backend_tokenizer.save(str(d / "tokenizer.json"))
        (d / "tokenizer_config.json").write_text(
            json.dumps(config, indent=2) + "\n", encoding="utf-8"
        )


def encode(tokenizer: PreTrainedTokenizerFast, text: str) -> list[int]:
    """Token ids of ``text`` as a prompt: no special tokens added."""
    return tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids
