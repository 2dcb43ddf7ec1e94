"""The evaluation step of a run: the final population's images, classified by an independent
classifier, against the class the prompt asked for, and against the generator's ground truth
where it has one (the shapes world).

Config (`conf/evaluation/*.yaml`): `classifier` (instantiated), `classes` (what a sweep asks
for), `target` (this run's class), `template` (the prompt, "{class}" replaced by the target),
`truth` (the ground-truth attribute, or null) and `thumbnail` (px of the images logged)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError
from ..models.base import Generator
from ..models.classifier import Classifier
from ..world import ATTRIBUTE_VALUES, ATTRIBUTES

PREDICTIONS = "eval_predictions.csv"
IMAGES = "eval_images.npz"
PLACEHOLDER = "{class}"


def evaluation_prompt(cfg: DictConfig) -> None:
    """Checks the evaluation config (no model needed) and sets `cfg.prompt` from its template."""
    node = cfg.evaluation
    if OmegaConf.is_missing(node, "target") or node.target is None:
        raise ConfigError(f"evaluation.target is not set; name the class to ask for, one of {', '.join(node.classes)}")
    target = str(node.target)
    if target not in node.classes:
        raise ConfigError(f"evaluation.target={target!r} is not one of evaluation.classes: {', '.join(node.classes)}")
    if node.truth is not None and node.truth not in ATTRIBUTES:
        raise ConfigError(f"evaluation.truth must be null or one of {', '.join(ATTRIBUTES)}, got {node.truth!r}")
    every = node.get("every", 0)
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ConfigError(f"evaluation.every must be an integer >= 0 (0: the final population only), got {every!r}")
    if node.template is not None:
        if PLACEHOLDER not in node.template:
            raise ConfigError(f"evaluation.template must contain {PLACEHOLDER}, got {node.template!r}")
        cfg.prompt = node.template.replace(PLACEHOLDER, target)


@dataclass
class Evaluation:
    classifier: Classifier
    target: str
    truth: str | None  # attribute of generator.scenes(z).labels() to compare with
    thumbnail: int
    batch_size: int

    @torch.inference_mode()
    def predictions(
        self, generator: Generator, latents: np.ndarray, cos_sim: np.ndarray
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """One row per image of the population (in its order) and the images as (N, t, t, 3)
        uint8 thumbnails."""
        z = torch.from_numpy(latents).float()
        probs, thumbs = [], []
        for chunk in z.split(self.batch_size):
            images = generator(chunk).float()
            probs.append(self.classifier.probabilities(images).float().cpu())
            thumbs.append(thumbnails(images.cpu(), self.thumbnail))
        p = torch.cat(probs)
        labels = self.classifier.labels
        top_p, top = p.max(1)
        table = pd.DataFrame({
            "image": np.arange(len(z)),
            "cos_sim": cos_sim,
            "target": self.target,
            "predicted": [labels[i] for i in top.tolist()],
            "probability": top_p.numpy(),
            "target_probability": p[:, labels.index(self.target)].numpy(),
        })
        table["correct"] = table["predicted"] == table["target"]
        truth = self.ground_truth(generator, z)
        if truth is not None:
            table["truth"] = truth
            table["truth_correct"] = table["truth"] == table["target"]
            table["classifier_right"] = table["predicted"] == table["truth"]
        return table, np.concatenate(thumbs)

    def ground_truth(self, generator: Generator, z: torch.Tensor) -> list[str] | None:
        """What each image really shows of the truth attribute, from the generator's scenes."""
        if self.truth is None or not hasattr(generator, "scenes"):
            return None
        values = generator.scenes(z).labels()[self.truth].cpu().tolist()
        return [ATTRIBUTE_VALUES[self.truth][v] for v in values]


def summary(table: pd.DataFrame) -> dict[str, float]:
    """The run's evaluation metrics."""
    metrics = {
        "eval_images": float(len(table)),
        "eval_positive": float(table["correct"].sum()),
        "eval_accuracy": float(table["correct"].mean()),
        "eval_target_probability": float(table["target_probability"].mean()),
    }
    if "truth" in table:
        metrics |= {
            "eval_truth_accuracy": float(table["truth_correct"].mean()),
            "eval_classifier_right": float(table["classifier_right"].mean()),
        }
    return metrics


def thumbnails(images: torch.Tensor, size: int) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] to (B, size, size, 3) uint8; only ever shrunk."""
    if images.shape[-1] > size:
        images = F.interpolate(images, size=(size, size), mode="area")
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def build_evaluation(cfg: DictConfig, device: torch.device, build: Callable[[DictConfig], Classifier], batch_size: int,
                     classifier: Classifier | None = None) -> Evaluation | None:
    """The run's evaluation, its classifier loaded (so missing weights stop the run before the
    search) unless one built from the same config is given, or None when the config has no
    `evaluation`."""
    node = cfg.get("evaluation")
    if not node:
        return None
    classifier = classifier or build(node.classifier).to(device)
    unknown = [c for c in node.classes if c not in classifier.labels]
    if unknown:
        raise ConfigError(f"evaluation.classes {', '.join(map(repr, unknown))} are not classes of "
                          f"{type(classifier).__name__}")
    return Evaluation(classifier, str(node.target), node.truth, node.thumbnail, batch_size)


def log_evaluation(tracker, evaluation: Evaluation, generator: Generator, step: int, latents: np.ndarray,
                   cos_sim: np.ndarray) -> dict[str, float]:
    """Classifies the final population and logs the predictions (CSV), the thumbnails (npz, in
    the same order) and the summary metrics at `step`; returns the metrics."""
    table, images = evaluation.predictions(generator, latents, cos_sim)
    metrics = summary(table)
    tracker.log_metrics(step, metrics)
    tracker.log_text(table.to_csv(index=False), PREDICTIONS)
    tracker.log_arrays(IMAGES, images=images)
    return metrics
