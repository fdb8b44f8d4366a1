"""Matrix: a weight that computes x @ W^T (+ bias, + a fused residual) the fastest way for the row count.

On CPU with one thread, BLAS computes products of 1 to 3 rows (decode steps) faster from the
transposed weight stored contiguously ([in, out]) than through ``F.linear`` on the checkpoint
layout ([out, in]): a whole forward of the embedded pair's shapes took 0.76x (target) and 0.5x
(draft) the time at 1 and 3 tokens; at 4 rows and more ``F.linear`` was as fast or faster (2-core
dev machine, median of 5 interleaved runs). So on CPU a Matrix keeps both layouts (twice the
weight memory) and picks by row count; elsewhere it keeps one. Imports torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Up to this many rows, the transposed layout is used (CPU only).
SMALL_ROWS = 3


class Matrix:
    """``m(x)`` = x @ W^T + bias; ``m(x, residual)`` adds the residual inside the matmul when it can."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        self.weight = weight
        self.bias = bias
        self.weight_t = weight.t().contiguous() if weight.device.type == "cpu" else None

    def __call__(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """x [rows, in] (2-D), residual [rows, out] or None."""
        small = self.weight_t is not None and x.shape[0] <= SMALL_ROWS
        if residual is None:
            if small:
                return (
                    torch.mm(x, self.weight_t)
                    if self.bias is None
                    else torch.addmm(self.bias, x, self.weight_t)
                )
            return F.linear(x, self.weight, self.bias)
        out = torch.addmm(residual, x, self.weight_t if small else self.weight.t())
        return out if self.bias is None else out + self.bias

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]
