"""How much samples look like their data set: the Fréchet distance in the shapes-world
classifier's feature space (`fd_classifier`: the FID formula, not FID, comparable only within the
shapes world), the classifier's confidence and whether it sees the classes a conditional
generator was asked for, and FID with pytorch-fid's Inception (weights from the weights
directory, never downloaded here)."""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torchvision
from omegaconf import DictConfig
from pytorch_fid import inception as fid_inception
from pytorch_fid.fid_score import calculate_frechet_distance
from scipy import linalg
from scipy.linalg import LinAlgWarning

from ..errors import ConfigError, LatentevoError
from ..models.classifier import ShapesClassifier, shapes_classifier
from ..models.pretrained import load_checkpoint, locate
from ..paths import resolve
from .data import ImageSource

INCEPTION_MODES = ("auto", True, False)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (the FID formula)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        # fewer samples than dimensions: a singular covariance, and an estimate biased upwards
        # (compare only at equal sample counts), not a wrong one
        warnings.simplefilter("ignore", LinAlgWarning)
        covmean = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


@torch.no_grad()
def classifier_features(classifier: ShapesClassifier, images: torch.Tensor, chunk: int = 250) -> torch.Tensor:
    """(N, 256) features of images in [0, 1], in chunks."""
    return torch.cat([classifier.features(images[i : i + chunk]) for i in range(0, len(images), chunk)])


def fd_classifier(classifier: ShapesClassifier, a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance of two image sets in [0, 1] in the shapes-world classifier's 256-d
    feature space: the FID formula, not FID."""
    return frechet_distance(classifier_features(classifier, a).numpy(), classifier_features(classifier, b).numpy())


@torch.no_grad()
def world_quality(
    classifier: ShapesClassifier,
    samples: torch.Tensor,
    reference: torch.Tensor,
    confidence: float = 0.9,
    asked: dict[str, torch.Tensor] | None = None,
) -> dict[str, float]:
    """`fd_classifier` of samples against reference images, and the fraction of samples whose
    shape and colour the classifier names with probability >= `confidence`; with `asked`
    (attribute -> the value index each sample was generated to show), `asked_<attribute>`: how
    often the classifier sees that value. One pass of the classifier's trunk gives both."""
    features = classifier_features(classifier, samples)
    probs = {a: head(features).softmax(-1) for a, head in classifier.heads.items()}
    confident = (probs["shape"].max(1).values >= confidence) & (probs["colour"].max(1).values >= confidence)
    metrics = {
        "fd_classifier": frechet_distance(features.numpy(), classifier_features(classifier, reference).numpy()),
        "confident_rate": confident.float().mean().item(),
    }
    for name, labels in (asked or {}).items():
        metrics[f"asked_{name}"] = (probs[name].argmax(1) == labels.cpu()).float().mean().item()
    return metrics


INCEPTION_FILE = Path(fid_inception.FID_WEIGHTS_URL).name
HOW_TO_GET = f"download {fid_inception.FID_WEIGHTS_URL} (pytorch-fid's Inception)"


def fid_inception_net(weights: str | Path | None = None, random_init: bool = False) -> torch.nn.Module:
    """pytorch-fid's InceptionV3 (2048-d pool features) with its FID weights read from the
    weights directory instead of its URL; random_init: the same architecture, untrained."""
    if random_init:
        # the library builds the network, then loads the downloaded weights: skip that load
        fetch = mock.patch.object(fid_inception, "load_state_dict_from_url", lambda *a, **k: {})
        keep = mock.patch.object(torchvision.models.inception.Inception3, "load_state_dict", lambda *a, **k: None)
    else:
        path = locate("FID Inception", INCEPTION_FILE, weights, HOW_TO_GET)
        state = load_checkpoint(path, "FID Inception")
        fetch, keep = mock.patch.object(fid_inception, "load_state_dict_from_url", lambda *a, **k: state), nullcontext()
    with fetch, keep:
        net = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    return net.eval()


@torch.no_grad()
def inception_features(net: torch.nn.Module, images: torch.Tensor, chunk: int = 50) -> np.ndarray:
    """(N, 2048) features of images in [0, 1] (the network resizes to 299 px itself)."""
    return torch.cat([net(images[i : i + chunk])[0].flatten(1) for i in range(0, len(images), chunk)]).numpy()


def fid(net: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> float:
    """FID between two image sets in [0, 1], with pytorch-fid's Fréchet distance."""
    fa, fb = inception_features(net, a), inception_features(net, b)
    return float(calculate_frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False)))


class Quality:
    """Distribution quality of samples against a fixed reference set of `eval_samples` real
    images: the classifier's measures (`world_quality`) and FID."""

    def __init__(self, cfg: DictConfig, source: ImageSource, g: torch.Generator):
        if cfg.quality.inception not in INCEPTION_MODES:
            raise ConfigError(f"quality.inception must be auto, true or false, got {cfg.quality.inception!r}")
        self.reference = (source.batch(cfg.eval_samples, g) + 1) / 2
        self.classifier = None
        if cfg.quality.classifier:
            world = cfg.quality.world_dir
            self.classifier = shapes_classifier(weights_dir=resolve(world)) if world else shapes_classifier()
        self.inception, self.fid_status = None, "off (quality.inception=false)"
        if cfg.quality.inception is not False:
            try:
                self.inception = fid_inception_net(cfg.quality.weights)
                self.fid_status = "computed"
            except LatentevoError as err:
                if cfg.quality.inception is True:
                    raise
                self.fid_status = f"skipped: {err}"

    def __call__(self, samples: torch.Tensor, asked: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
        out = {}
        if self.classifier is not None:
            out |= world_quality(self.classifier, samples, self.reference, asked=asked)
        if self.inception is not None:
            out["fid"] = fid(self.inception, samples, self.reference)
        return out
