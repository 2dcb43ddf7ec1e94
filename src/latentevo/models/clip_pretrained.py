"""Published CLIP models through open_clip: OpenAI's ViT-B/32 (the thesis's scorer) and any
open_clip model/pretrained pair, from a file in the weights directory.

The file is `open_clip/<hub repo>/open_clip_model.safetensors` in the weights directory (for
ViT-B-32/openai: open_clip/timm/vit_base_patch32_clip_224.openai/...). When it is absent and
the Hugging Face hub can be reached, it is downloaded there with the hub client open_clip uses;
offline, the run stops with one line saying which file to put where. Loading is open_clip's own
(safetensors, or torch.load with weights_only=True), so its checkpoint conversions apply.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path

import open_clip
import torch
from safetensors import SafetensorError

from ..errors import ConfigError, WeightsError
from ..identity import reads_weights
from .clip import OpenClipScorer
from .precision import autocast, check_precision
from .pretrained import locate_or_download, weights_dir

HUB_URL = "https://huggingface.co"
# open_clip's hub repos hold the weights under this name (and a pickled .bin twin)
HUB_FILE = "open_clip_model.safetensors"
LOAD_ERRORS = (SafetensorError, OSError, RuntimeError, EOFError, ValueError, KeyError, zipfile.BadZipFile,
               pickle.UnpicklingError)


def tag_config(model_name: str, pretrained: str) -> dict:
    """open_clip's record of a model/pretrained pair (source, preprocessing, QuickGELU)."""
    if model_name not in open_clip.list_models():
        raise ConfigError(f"unknown open_clip model {model_name!r}; see open_clip.list_models(), e.g. ViT-B-32")
    cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(model_name)) or "none"
        raise ConfigError(f"open_clip has no pretrained {pretrained!r} for {model_name}; known: {tags}")
    return cfg


def _hub_download(repo_id: str, filename: str):
    def download(url: str, dest: Path) -> None:
        from huggingface_hub import hf_hub_download

        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            shutil.move(hf_hub_download(repo_id, filename, local_dir=tmp), dest)

    return download


def hub_file(model_name: str, pretrained: str, cfg: dict) -> tuple[str, str]:
    """The pair's Hugging Face repo and the file in it."""
    hub = cfg.get("hf_hub", "")
    if not hub:
        raise ConfigError(f"CLIP {model_name} ({pretrained}) has no Hugging Face hub source in open_clip; "
                          "give pretrained=<file> instead")
    # 'org/repo/' names the repo (default file), 'org/repo/file' one file in it
    return (hub.rstrip("/"), HUB_FILE) if hub.endswith("/") else os.path.split(hub)


def relative_path(repo_id: str, filename: str) -> str:
    """Where a hub file goes in the weights directory."""
    return f"open_clip/{repo_id}/{filename}"


def checkpoint_path(model_name: str, pretrained: str, cfg: dict, weights: str | None) -> Path:
    """Where the pair's weights are (downloading them first when possible)."""
    repo_id, filename = hub_file(model_name, pretrained, cfg)
    url = f"{HUB_URL}/{repo_id}"
    how = f"download {filename} from {url}/tree/main"
    return locate_or_download(f"CLIP {model_name} ({pretrained})", relative_path(repo_id, filename), weights, how, url,
                              _hub_download(repo_id, filename))


def weight_files(model_name: str, pretrained: str, random_init: bool, weights: str | None, **_) -> list[Path]:
    """The checkpoint `pretrained_clip` loads: the file given, else the tag's in the weights directory."""
    given_file = Path(str(pretrained)).expanduser()
    if random_init or given_file.is_file():
        return [] if random_init else [given_file]
    return [weights_dir(weights) / relative_path(*hub_file(model_name, pretrained, tag_config(model_name, pretrained)))]


def load_weights(model: torch.nn.Module, path: Path, label: str) -> None:
    try:
        open_clip.load_checkpoint(model, str(path), strict=True, weights_only=True)
    except LOAD_ERRORS as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        raise WeightsError(f"cannot load the {label} weights {path} (corrupt, truncated or another model's): "
                           f"{reason}") from err


class PrecisionClipScorer(OpenClipScorer):
    """OpenClipScorer whose encoders run under autocast at `precision`."""

    def __init__(self, model: torch.nn.Module, model_name: str, precision: str = "fp32"):
        super().__init__(model, model_name)
        self.precision = check_precision(precision)

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        with autocast(self.device, self.precision):
            return super().embed_text(texts)

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.precision):
            return super().embed_images(images)


@reads_weights(weight_files)
def pretrained_clip(model_name: str = "ViT-B-32", pretrained: str = "openai", random_init: bool = False,
                    weights: str | None = None, precision: str = "fp32") -> OpenClipScorer:
    """An open_clip model with published weights; `pretrained` is a tag open_clip knows (e.g.
    openai, laion2b_s34b_b79k) or a checkpoint file (for OpenAI's weights in a file, name the
    -quickgelu model). random_init: the same architecture (QuickGELU where the tag was trained
    with it), untrained."""
    given_file = Path(str(pretrained)).expanduser()
    cfg = {} if given_file.is_file() else tag_config(model_name, pretrained)
    path = None
    if not random_init:  # a missing file stops before the build
        path = given_file if given_file.is_file() else checkpoint_path(model_name, pretrained, cfg, weights)
    model = open_clip.create_model(model_name, pretrained=None, force_quick_gelu=cfg.get("quick_gelu", False))
    if cfg:
        # the tag's own normalisation and interpolation
        preprocess = open_clip.get_model_preprocess_cfg(model) | {
            k: cfg[k] for k in ("mean", "std", "interpolation") if k in cfg}
        open_clip.set_model_preprocess_cfg(model, preprocess)
    if path is not None:
        load_weights(model, path, f"CLIP {model_name} ({pretrained})")
    return PrecisionClipScorer(model.requires_grad_(False), model_name, precision)
