"""Distribution quality: FID with pytorch-fid's Inception (weights from the weights directory,
never downloaded here) and, offline, the same Fréchet distance in the shapes-world
classifier's feature space (`fd_classifier`: comparable only within the shapes world)."""

from __future__ import annotations

from contextlib import nullcontext
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torchvision
from scipy.linalg import LinAlgWarning
from pytorch_fid import inception as fid_inception
from pytorch_fid.fid_score import calculate_frechet_distance

from ..models.classifier import ShapesClassifier
from ..models.pretrained import load_checkpoint, locate
from ..training.quality import frechet_distance

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


@torch.no_grad()
def classifier_features(classifier: ShapesClassifier, images: torch.Tensor, chunk: int = 250) -> np.ndarray:
    return torch.cat([classifier.features(images[i : i + chunk]) for i in range(0, len(images), chunk)]).numpy()


def fd_classifier(classifier: ShapesClassifier, a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance of two image sets in [0, 1] in the shapes-world classifier's 256-d
    feature space: the FID formula, not FID."""
    with warnings.catch_warnings():
        # fewer images than dimensions: a singular covariance, and an estimate biased upwards
        # (compare only at equal sample counts), not a wrong one
        warnings.simplefilter("ignore", LinAlgWarning)
        return frechet_distance(classifier_features(classifier, a), classifier_features(classifier, b))
