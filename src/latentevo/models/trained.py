"""Networks trained by train.py on disk (safetensors + JSON, `models.weights.save_weights`) and
as the search pipeline's Generator."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import WeightsError
from ..identity import reads_weights
from ..paths import resolve
from .base import TrainedGenerator
from .dcgan import DCGANNetG
from .pretrained import load_checkpoint, load_into
from .realness import Realness, RealnessCNN
from .vae import VAEDecoder

NETWORKS = {"dcgan": DCGANNetG, "vae": VAEDecoder, "realness": RealnessCNN}
TRAIN_HINT = "train it with `python train.py model=<dcgan|egan|vae|realness>` (see docs/gan.md)"


def network_files(path: str | Path) -> list[Path]:
    """The weights and the JSON of the network saved at `path`."""
    path = resolve(path)
    return [path, path.with_suffix(".json")]


def load_network(path: str | Path, kind: str | None = None) -> torch.nn.Module:
    """The network saved at `path` (eval mode); a missing, corrupt or mismatched file is one
    WeightsError line."""
    path, meta = network_files(path)
    if not path.is_file() or not meta.is_file():
        raise WeightsError(f"no trained network at {path} (or its {meta.name}); {TRAIN_HINT}")
    try:
        config = json.loads(meta.read_text())
        cls = NETWORKS[config["model"] if config["model"] != "egan" else "dcgan"]
        net = cls(**config["architecture"])
    except (ValueError, KeyError, TypeError) as err:
        raise WeightsError(
            f"{meta} does not describe a trained network ({type(err).__name__}: {err}); {TRAIN_HINT}"
        ) from err
    if kind is not None and not isinstance(net, NETWORKS[kind]):
        raise WeightsError(f"{path} holds a {config['model']} network, not a {kind} one")
    load_into(net, {k: v.float() for k, v in load_checkpoint(path, config["model"]).items()}, config["model"], path)
    return net.eval().requires_grad_(False)


@reads_weights(lambda path, **_: network_files(path))
def trained_generator(path: str, latent_bound: float = 3.0) -> TrainedGenerator:
    net = load_network(path)
    if isinstance(net, RealnessCNN):
        raise WeightsError(f"{resolve(path)} is a realness CNN, not a generator")
    return TrainedGenerator(net, latent_bound)


@reads_weights(lambda path, **_: network_files(path))
def trained_realness(path: str) -> Realness:
    """FaceGen's realness CNN as trained by `python train.py model=realness` (`make facegen-quick`
    writes one to .cache/gan-quick/weights/realness_shapes.safetensors)."""
    return Realness(load_network(path, kind="realness"), 32, signed_input=False, logits=False)
