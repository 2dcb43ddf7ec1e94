"""Supervised training of the shapes world's independent classifier."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.classifier import ShapesClassifier
from ..world import ATTRIBUTES
from .data import scene_batch
from .recipe import Steps
from .state import StateDicts


@dataclass
class ClassifierTrainConfig(Steps):
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    width: int = 24


class ClassifierTrainer(StateDicts):
    """Every shape x colour pair is seen here: the classifier judges, it is not judged on
    generalisation. Degraded images (blur, noise) keep it reliable on learned generators.
    AdamW with a one-cycle schedule."""

    STATE_DICTS = ("model", "opt", "sched")

    def __init__(self, cfg: ClassifierTrainConfig, g: torch.Generator):
        self.cfg, self.g = cfg, g
        self.model = ShapesClassifier(width=cfg.width)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=cfg.lr, total_steps=cfg.iterations,
                                                         pct_start=0.15)
        self.model.train()

    def step(self) -> dict[str, float]:
        batch = scene_batch(self.cfg.batch_size, self.g)
        logits = self.model(batch.images)
        losses = {a: F.cross_entropy(logits[a], batch.labels[:, i]) for i, a in enumerate(ATTRIBUTES)}
        loss = sum(losses.values()) / len(losses)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        return {"loss": loss.item(), **{f"loss_{a}": v.item() for a, v in losses.items()}}

    def evaluate(self, n: int) -> dict[str, float]:
        metrics = evaluate_classifier(self.model.eval(), n)
        self.model.train()
        return metrics

    def network(self) -> ShapesClassifier:
        return self.model.eval().requires_grad_(False)

    def architecture(self) -> dict:
        return {"width": self.cfg.width}



@torch.no_grad()
def evaluate_classifier(model: ShapesClassifier, n: int = 2000, seed: int = 54321) -> dict[str, float]:
    """Accuracy per attribute on held-out clean renders and on degraded ones."""
    metrics = {}
    for tag, augment in (("", False), ("_degraded", True)):
        batch = scene_batch(n, torch.Generator().manual_seed(seed), augment=augment)
        probs = model.predict(batch.images)
        for i, a in enumerate(ATTRIBUTES):
            metrics[f"accuracy_{a}{tag}"] = (probs[a].argmax(1) == batch.labels[:, i]).float().mean().item()
    return metrics
