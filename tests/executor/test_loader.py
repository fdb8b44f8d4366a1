"""executor.loader: built pairs resolve by name or directory; every bad pair fails before any
weights load, with a PairError naming the file and the mismatch."""

from __future__ import annotations

import json
import shutil

import pytest

from executor.loader import ModelPair, PairError, load_tokenizer, resolve_pair


@pytest.fixture
def pair_dirs(smoke_build, tmp_path):
    """A writable copy of the smoke pair: (target_dir, draft_dir)."""
    target = shutil.copytree(smoke_build.target_dir, tmp_path / "t")
    draft = shutil.copytree(smoke_build.draft_dir, tmp_path / "d")
    return target, draft


def _spec(target, draft) -> str:
    return f"{target},{draft}"


def _edit_config(d, **changes):
    path = d / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def _error(spec: str) -> str:
    with pytest.raises(PairError) as e:
        resolve_pair(spec)
    return str(e.value)


def test_built_pair_resolves_by_name(smoke_cache, smoke_build):
    pair = resolve_pair("smoke")
    assert isinstance(pair, ModelPair) and pair.name == "smoke"
    assert pair.target_dir == smoke_build.target_dir and pair.draft_dir == smoke_build.draft_dir
    assert pair.tokenizer_dir == pair.target_dir
    assert (
        pair.target_config["model_type"] == "llama"
        and pair.vocab_size == pair.draft_config["vocab_size"]
    )
    with pytest.raises(TypeError):
        pair.target_config["vocab_size"] = 1  # read-only view of config.json
    tok = load_tokenizer(pair)
    assert tok.eos_token == "<|endoftext|>"


def test_pair_resolves_from_two_directories(smoke_pair, pair_dirs):
    pair = resolve_pair(_spec(*pair_dirs))
    assert (pair.target_dir, pair.draft_dir) == tuple(p.resolve() for p in pair_dirs)
    assert dict(pair.target_config) == dict(smoke_pair.target_config)


def test_qwen3_configs_are_accepted(pair_dirs):
    for d in pair_dirs:
        _edit_config(d, architectures=["Qwen3ForCausalLM"], model_type="qwen3")
    assert resolve_pair(_spec(*pair_dirs)).draft_config["model_type"] == "qwen3"


def test_unbuilt_embedded_pair_says_how_to_build(tmp_path, monkeypatch):
    monkeypatch.setenv("SSDSIM_CACHE", str(tmp_path))
    msg = _error("embedded")
    assert "not built" in msg and "python -m executor.zoo build" in msg and str(tmp_path) in msg
    assert "--size smoke" in _error("smoke")


def test_bad_spec():
    assert "exactly two directories" in _error("a,b,c")
    assert "expected a pair name" in _error(" ")


def test_missing_directory(pair_dirs, tmp_path):
    target, _ = pair_dirs
    missing = tmp_path / "nowhere"
    assert _error(_spec(target, missing)) == f"draft directory {missing} does not exist"


def test_missing_config(pair_dirs):
    target, draft = pair_dirs
    (target / "config.json").unlink()
    assert f"target config {target / 'config.json'}: missing" in _error(_spec(target, draft))


def test_unreadable_config(pair_dirs):
    target, draft = pair_dirs
    (draft / "config.json").write_text("{not json")
    assert f"draft config {draft / 'config.json'}: unreadable JSON" in _error(_spec(target, draft))


def test_unsupported_architecture(pair_dirs):
    target, draft = pair_dirs
    _edit_config(target, architectures=["GPT2LMHeadModel"], model_type="gpt2")
    msg = _error(_spec(target, draft))
    assert f"target config {target / 'config.json'}" in msg
    assert "GPT2LMHeadModel" in msg and "not supported" in msg and "Qwen3ForCausalLM" in msg


def test_vocab_size_mismatch(pair_dirs):
    target, draft = pair_dirs
    vocab = json.loads((target / "config.json").read_text())["vocab_size"]
    _edit_config(draft, vocab_size=vocab + 8)
    msg = _error(_spec(target, draft))
    assert (
        f"draft config {draft / 'config.json'}: vocab_size {vocab + 8} != target's {vocab}" in msg
    )


def test_tokenizer_mismatch(pair_dirs):
    target, draft = pair_dirs
    path = draft / "tokenizer.json"
    data = json.loads(path.read_text())
    vocab = data["model"]["vocab"]
    token = next(t for t, i in vocab.items() if i == 300)
    vocab["zz_renamed"] = vocab.pop(token)
    path.write_text(json.dumps(data))
    msg = _error(_spec(target, draft))
    assert "tokenizers disagree" in msg and str(path) in msg and "id 300" in msg


def test_no_tokenizer_anywhere(pair_dirs):
    for d in pair_dirs:
        (d / "tokenizer.json").unlink()
    msg = _error(_spec(*pair_dirs))
    assert "no tokenizer" in msg and str(pair_dirs[0]) in msg and str(pair_dirs[1]) in msg


def test_one_missing_tokenizer_uses_the_other(pair_dirs, caplog):
    target, draft = pair_dirs
    (target / "tokenizer.json").unlink()
    pair = resolve_pair(_spec(target, draft))
    assert pair.tokenizer_dir == draft.resolve()
    assert f"no tokenizer in {target.resolve()}" in caplog.text


def test_tokenizer_larger_than_vocab(pair_dirs):
    target, draft = pair_dirs
    for d in pair_dirs:
        _edit_config(d, vocab_size=100)
    msg = _error(_spec(target, draft))
    assert "does not fit the models' vocab_size 100" in msg and "tokenizer.json" in msg


def test_missing_weights(pair_dirs):
    target, draft = pair_dirs
    (draft / "model.safetensors").unlink()
    msg = _error(_spec(target, draft))
    assert (
        msg
        == f"draft weights: no model.safetensors or model.safetensors.index.json in {draft.resolve()}"
    )


def test_sharded_weights_need_every_shard(pair_dirs):
    target, draft = pair_dirs
    (target / "model.safetensors").rename(target / "model-00001-of-00002.safetensors")
    index = {
        "weight_map": {
            "a": "model-00001-of-00002.safetensors",
            "b": "model-00002-of-00002.safetensors",
        }
    }
    (target / "model.safetensors.index.json").write_text(json.dumps(index))
    msg = _error(_spec(target, draft))
    assert "missing shard file(s) model-00002-of-00002.safetensors" in msg
    (target / "model-00002-of-00002.safetensors").write_bytes(b"")
    assert resolve_pair(_spec(target, draft)).target_dir == target.resolve()
