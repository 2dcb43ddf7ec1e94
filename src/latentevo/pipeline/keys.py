"""The key that says which jobs can share models, read from their configs alone: a sweep's
launching process groups its jobs by it without loading any model library."""

from __future__ import annotations

import json

from omegaconf import DictConfig, OmegaConf

#: top-level keys that say how the shared models run; a pack's runs agree on all of them
MODEL_KEYS = ("generator", "clip", "augment", "realness", "device", "threads", "batch_size", "paths")
#: per-run settings inside the model groups (the augmented views' random stream)
PER_RUN_MODEL_KEYS = {"augment": ("seed",)}


def pack_key(cfg: DictConfig) -> str:
    """Jobs with the same key share one generator and scorer: everything that builds or runs
    the models, less the per-run settings inside them."""
    values = {key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
              for key in MODEL_KEYS if key in cfg}
    for group, keys in PER_RUN_MODEL_KEYS.items():
        if isinstance(values.get(group), dict):
            for key in keys:
                values[group].pop(key, None)
    return json.dumps(values, sort_keys=True, default=str)
