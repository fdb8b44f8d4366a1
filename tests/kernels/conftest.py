"""Kernel tests run with one torch thread (the runtime's setting; the CI machine is small and shared)."""

import torch

torch.set_num_threads(1)
