"""Matrix: a weight that computes x @ W^T (+ bias, + a fused residual) the fastest way for the row count.

On CPU with one thread, measured on the 2-core dev machine (AMD EPYC, AVX2) with
`python studies/bench_matrix.py` (whole forwards, paths interleaved, medians):
- 1 to 3 rows (decode steps) are fastest from the transposed weight stored contiguously
  ([in, out]) through BLAS: 0.5-0.8x the time of ``F.linear`` on the checkpoint layout;
- from 4 rows on, a model whose weights do not fit in cache (the embedded target, 49 MB) runs
  0.8-0.9x faster through oneDNN with the weight reordered once at load (``torch.ops.mkldnn``,
  the kernels PyTorch's own CPU compiler emits; MKL's GEMM repacks the streamed weight on every
  call); a small model (the embedded draft, 6 MB, cache-resident) is 1.05-1.15x slower there, so
  it keeps ``F.linear``.
So on CPU a Matrix keeps the transposed layout and, for large models (``dnn_from_rows`` set by
the decoder), the reordered weight. Elsewhere it calls ``F.linear``. ``set_cpu_kernels`` forces
one path, for benchmarks and tests. Imports torch.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

# Up to this many rows the transposed layout is used on CPU.
SMALL_ROWS = 3
# "auto" (transposed up to SMALL_ROWS rows, then oneDNN from the matrix's dnn_from_rows, else
# F.linear), "blas" (never oneDNN), "onednn" (always oneDNN), "linear" (always F.linear).
_CPU_KERNELS = "auto"
CPU_KERNELS = ("auto", "blas", "onednn", "linear")


def set_cpu_kernels(name: str) -> None:
    """Choose how CPU matrices compute (see ``CPU_KERNELS``); for benchmarks and tests."""
    global _CPU_KERNELS
    if name not in CPU_KERNELS:
        raise ValueError(f"set_cpu_kernels: expected one of {CPU_KERNELS}, got {name!r}")
    _CPU_KERNELS = name


def _reordered(weight: torch.Tensor) -> torch.Tensor | None:
    """The weight in oneDNN's preferred layout, or None where oneDNN can't take it."""
    if weight.device.type != "cpu" or weight.dtype != torch.float32:
        return None
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._reorder_linear_weight(weight, None)
    except (RuntimeError, AttributeError) as exc:  # a build without the op
        log.debug("oneDNN reorder unavailable (%s); using BLAS", exc)
        return None


class Matrix:
    """``m(x)`` = x @ W^T + bias; ``m(x, residual)`` adds the residual inside the matmul when it can."""

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        *,
        dnn_from_rows: int | None = None,
    ) -> None:
        """dnn_from_rows: on CPU, use oneDNN from this many rows (None: never, unless forced)."""
        self.weight = weight
        self.bias = bias
        cpu = weight.device.type == "cpu"
        self.weight_t = weight.t().contiguous() if cpu else None
        self.dnn_from_rows = dnn_from_rows
        self.packed = _reordered(weight) if cpu and dnn_from_rows is not None else None

    def _kernel(self, rows: int) -> str:
        if self.weight_t is None:
            return "linear"
        mode = _CPU_KERNELS
        if mode == "linear":
            return "linear"
        if mode == "onednn" and self.weight_t is not None:
            if self.packed is None:  # forced: reorder on first use
                self.packed = _reordered(self.weight)
            if self.packed is not None:
                return "dnn"
        if rows <= SMALL_ROWS:
            return "t"
        if (
            mode == "auto"
            and self.packed is not None
            and self.dnn_from_rows is not None
            and rows >= self.dnn_from_rows
        ):
            return "dnn"
        return "linear"

    def __call__(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """x [rows, in] (2-D), residual [rows, out] or None."""
        kernel = self._kernel(x.shape[0])
        if kernel == "dnn":
            x = x.contiguous()
            if residual is None:
                return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
            return torch.ops.mkldnn._linear_pointwise.binary(
                x, residual, self.packed, self.bias, "add"
            )
        if residual is None:
            if kernel == "t":
                return (
                    torch.mm(x, self.weight_t)
                    if self.bias is None
                    else torch.addmm(self.bias, x, self.weight_t)
                )
            return F.linear(x, self.weight, self.bias)
        out = torch.addmm(residual, x, self.weight_t if kernel == "t" else self.weight.t())
        return out if self.bias is None else out + self.bias

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]
