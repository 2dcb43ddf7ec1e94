"""Writing trained world models: float16 safetensors beside a JSON config."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file


def save_model(out: Path, name: str, model: torch.nn.Module, config: dict) -> None:
    """Weights stored in float16 (half the size; the models run in float32 after loading)."""
    state = {k: (v.half() if v.is_floating_point() else v).cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, out / f"{name}.safetensors")
    (out / f"{name}.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def roundtrip(model: torch.nn.Module) -> torch.nn.Module:
    """The model as it will be after saving in float16 and loading, so that the numbers
    reported are those of the committed weights."""
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            t.data = t.data.half().float()
    return model
