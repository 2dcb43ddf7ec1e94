"""Speed options shared by the large generators and CLIP: reduced-precision autocast and the
channels-last memory layout. Both are off by default, so that results on a CPU stay exact."""

from __future__ import annotations

import contextlib

import torch

from ..errors import ConfigError

# fp16 suits CUDA; bf16 keeps fp32's range, so it also suits CPUs and models prone to overflow
PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def autocast(device: torch.device, precision: str):
    """Context in which the model's forward pass runs at `precision` (fp32: unchanged)."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format
