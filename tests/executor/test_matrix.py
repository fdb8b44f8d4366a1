"""Matrix kernel paths (executor.model.matrix) against F.linear, and the decoder's choice of path.

Every CPU path (transposed BLAS, F.linear, oneDNN with the reordered weight) computes the same
product within float32 rounding for 1 to 9 rows, with and without bias and fused residual; the
decoder turns oneDNN on only for models whose matrices exceed DNN_MIN_BYTES.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from executor.model import matrix
from executor.model.decoder import DNN_FROM_ROWS, DNN_MIN_BYTES, Decoder, _dnn_from_rows
from executor.model.matrix import Matrix, set_cpu_kernels
from tests.executor.helpers import save_random_model


@pytest.fixture
def kernels():
    yield set_cpu_kernels
    set_cpu_kernels("auto")


@pytest.mark.parametrize("path", matrix.CPU_KERNELS)
@pytest.mark.parametrize("with_bias", [False, True])
def test_every_path_matches_linear(kernels, path, with_bias):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(96, 160, generator=g)
    b = torch.randn(96, generator=g) if with_bias else None
    m = Matrix(w, b, dnn_from_rows=1)
    kernels(path)
    for rows in range(1, 10):
        x = torch.randn(rows, 160, generator=g)
        r = torch.randn(rows, 96, generator=g)
        want = F.linear(x, w, b)
        torch.testing.assert_close(m(x), want, atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(m(x, r), want + r, atol=1e-4, rtol=1e-5)
        # a strided input (the decoder's RMSNorm returns a slice)
        wide = torch.randn(rows, 320, generator=g)[:, :160]
        torch.testing.assert_close(m(wide), F.linear(wide, w, b), atol=1e-4, rtol=1e-5)


def test_auto_uses_onednn_only_when_asked(kernels):
    w = torch.randn(8, 8)
    assert Matrix(w)._kernel(16) == "linear" and Matrix(w).packed is None
    m = Matrix(w, dnn_from_rows=4)
    assert m._kernel(matrix.SMALL_ROWS) == "t"
    if m.packed is not None:  # oneDNN available in this build
        assert m._kernel(4) == "dnn"
    kernels("blas")
    assert m._kernel(4) == "linear"


def test_set_cpu_kernels_rejects_unknown_names():
    with pytest.raises(ValueError, match="expected one of"):
        set_cpu_kernels("fastest")


def test_decoder_turns_onednn_on_for_large_models(tmp_path):
    small = Decoder.from_dir(save_random_model(tmp_path / "small", "llama", seed=1))
    assert small.lm_head.dnn_from_rows is None
    assert all(m.dnn_from_rows is None for m in (small.layers[0].qkv, small.layers[0].down))

    def weights(hidden: int, layers: int, vocab: int) -> SimpleNamespace:
        layer = SimpleNamespace(
            qkv=torch.empty(3 * hidden, hidden),
            o=torch.empty(hidden, hidden),
            gate_up=torch.empty(6 * hidden, hidden),
            down=torch.empty(hidden, 3 * hidden),
        )
        return SimpleNamespace(lm_head=torch.empty(vocab, hidden), layers=[layer] * layers)

    # the embedded pair's shapes: target 384 x 6 layers, vocab 4096 (49 MB); draft 128 x 2
    assert _dnn_from_rows(weights(384, 6, 4096)) == DNN_FROM_ROWS
    assert _dnn_from_rows(weights(128, 2, 4096)) is None
    assert 12 * 128 * 128 * 2 * 4 + 4096 * 128 * 4 < DNN_MIN_BYTES
