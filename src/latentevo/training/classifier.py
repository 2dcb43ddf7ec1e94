"""Supervised training of the shapes world's independent classifier."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.classifier import ShapesClassifier
from ..world import ATTRIBUTES
from .data import scene_batch


@dataclass
class ClassifierTrainConfig:
    steps: int = 800
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    width: int = 24
    seed: int = 1


def train_classifier(cfg: ClassifierTrainConfig, log=lambda step, metrics: None, progress=None) -> ShapesClassifier:
    """Every shape x colour pair is seen here: the classifier judges, it is not judged on
    generalisation. Degraded images (blur, noise) keep it reliable on learned generators."""
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    model = ShapesClassifier(width=cfg.width)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.15)
    model.train()
    for step in range(cfg.steps):
        batch = scene_batch(cfg.batch_size, g)
        logits = model(batch.images)
        losses = {a: F.cross_entropy(logits[a], batch.labels[:, i]) for i, a in enumerate(ATTRIBUTES)}
        loss = sum(losses.values()) / len(losses)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 20 == 0 or step == cfg.steps - 1:
            log(step, {"loss": loss.item(), **{f"loss_{a}": v.item() for a, v in losses.items()}})
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return model.eval().requires_grad_(False)


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
