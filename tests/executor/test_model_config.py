"""Config parsing (both rope layouts, both families) and weight loading (sharded, errors)."""

from __future__ import annotations

import json

import pytest
import torch

from executor.model.config import ConfigError, load_config, parse_config
from executor.model.decoder import Decoder
from executor.model.weights import WeightsError
from tests.executor.helpers import load_hf, save_random_model

LLAMA_OLD_STYLE = {
    "model_type": "llama",
    "vocab_size": 128256,
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0,
    "rope_scaling": {
        "rope_type": "llama3",
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
    "tie_word_embeddings": True,
    "eos_token_id": [128001, 128008, 128009],
    "max_position_embeddings": 131072,
}


def test_parse_llama_3_2_style_config():
    c = parse_config(LLAMA_OLD_STYLE)
    assert (c.family, c.head_dim, c.num_groups, c.rope_theta) == ("llama", 64, 4, 500000.0)
    assert c.rope_scaling_dict["factor"] == 32.0 and c.tie_word_embeddings
    assert c.eos_token_ids == (128001, 128008, 128009) and not c.qk_norm


def test_parse_saved_qwen3_config(tmp_path):
    path = save_random_model(tmp_path / "q", "qwen3")
    c = load_config(path)
    assert c.family == "qwen3" and c.qk_norm and c.head_dim == 32 and c.rope_scaling is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_type": "gpt2"}, "model_type 'gpt2' is not supported"),
        ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope type 'yarn'"),
        ({"hidden_size": None}, "missing field 'hidden_size'"),
        ({"num_key_value_heads": 5}, "not divisible"),
        ({"hidden_act": "gelu"}, "hidden_act"),
        ({"vocab_size": "big"}, "'vocab_size' = 'big'"),
    ],
)
def test_bad_configs_are_rejected(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({**LLAMA_OLD_STYLE, **change}, "x/config.json")


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"no config\.json"):
        load_config(tmp_path)


def test_sharded_checkpoint_loads(tmp_path):
    path = save_random_model(tmp_path / "m", "llama", tie_word_embeddings=False)
    hf = load_hf(path)
    sharded = tmp_path / "sharded"
    hf.save_pretrained(sharded, max_shard_size="20KB")
    assert (sharded / "model.safetensors.index.json").is_file()
    ids = torch.arange(10)[None]
    a, b = Decoder.from_dir(path), Decoder.from_dir(sharded)
    with torch.inference_mode():
        la = a.forward(ids, torch.zeros(1, dtype=torch.long), a.new_cache(1, 10))
        lb = b.forward(ids, torch.zeros(1, dtype=torch.long), b.new_cache(1, 10))
    assert torch.equal(la, lb)


def test_weights_errors_name_the_tensor(tmp_path):
    path = save_random_model(tmp_path / "m", "llama")
    config = json.loads((path / "config.json").read_text())
    config["intermediate_size"] = 64
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        WeightsError, match=r"mlp.gate_proj.weight' has shape \(128, 64\), expected \(64, 64\)"
    ):
        Decoder.from_dir(path)
    (path / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"no model\.safetensors"):
        Decoder.from_dir(path)
