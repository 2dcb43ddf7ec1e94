"""How much a generator's samples look like the shapes world, judged by the world classifier."""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg

from ..models.classifier import ShapesClassifier


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (the FID formula)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


@torch.no_grad()
def _features(classifier: ShapesClassifier, images: torch.Tensor, chunk: int = 250) -> np.ndarray:
    return torch.cat([classifier.features(images[i : i + chunk]) for i in range(0, len(images), chunk)]).numpy()


def _features_and_predictions(
    classifier: ShapesClassifier, images: torch.Tensor
) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    """One pass of the classifier's trunk: its features and, from them, each attribute's probabilities."""
    features = torch.from_numpy(_features(classifier, images))
    with torch.no_grad():
        probs = {a: head(features).softmax(-1) for a, head in classifier.heads.items()}
    return features.numpy(), probs


@torch.no_grad()
def world_quality(
    classifier: ShapesClassifier,
    samples: torch.Tensor,
    reference: torch.Tensor,
    confidence: float = 0.9,
    asked: dict[str, torch.Tensor] | None = None,
) -> dict[str, float]:
    """Fréchet distance in the classifier's feature space (not Inception's: an FID analogue for
    this world only) and the fraction of samples whose shape and colour the classifier names
    with probability >= `confidence`; with `asked` (attribute -> the value index each sample
    was generated to show), `asked_<attribute>`: how often the classifier sees that value."""
    features, probs = _features_and_predictions(classifier, samples)
    confident = (probs["shape"].max(1).values >= confidence) & (probs["colour"].max(1).values >= confidence)
    metrics = {
        "frechet_classifier": frechet_distance(features, _features(classifier, reference)),
        "confident_rate": confident.float().mean().item(),
    }
    for name, labels in (asked or {}).items():
        metrics[f"asked_{name}"] = (probs[name].argmax(1) == labels).float().mean().item()
    return metrics
