"""Contrastive training of the shapes-world mini-CLIP.

The model is a plain open_clip CLIP; training adds what a tiny model on a small CPU budget
needs and inference never sees:
- a sigmoid (SigLIP-style) loss whose labels come from the renderer's ground truth: caption t
  is a positive for image b whenever everything it names is true of b, so repeated and partial
  captions are never false negatives;
- hard negative captions that differ from a true caption in one attribute;
- auxiliary linear heads predicting each attribute from the image and text embeddings, which
  alone train the image tower first: shape is learned far faster from labels than from
  captions;
- then the image trunk is locked (LiT, Zhai et al. 2022): the contrastive phase trains the text
  tower and the image tower's attention pool only, which halves the cost of a step and keeps
  the attribute features the labels taught;
- no caption, true or false, naming a held-out shape x colour pair: its images are rendered
  and captioned by their shape or their colour, never both, so that prompts naming those
  pairs test whether the text tower composes words it has only seen apart.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models.clip import WORLD_CLIP, OpenClipScorer, build_open_clip, tokenizer_of
from ..world import ATTRIBUTE_VALUES, ATTRIBUTES, caption_text
from ..world.captions import UNNAMED, perturb_content, sample_content, truth_matrix
from .clip_eval import evaluate_scorer
from .data import HELD_OUT_PAIRS, scene_batch
from .recipe import Steps
from .state import StateDicts


@dataclass
class ClipTrainConfig(Steps):
    batch_size: int = 128
    lr: float = 7e-4
    image_pretrain_steps: int = 800
    pretrain_lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 100
    aux_weight: float = 5.0

    @property
    def steps(self) -> int:
        """Contrastive steps: the iterations after the image tower's pretraining."""
        return self.iterations - self.image_pretrain_steps


class AuxHeads(nn.Module):
    """Per-attribute classifiers on the image embedding and (with an 'unnamed' class) on the
    text embedding; they shape the embedding during training only."""

    def __init__(self, dim: int):
        super().__init__()
        self.image = nn.ModuleDict({a: nn.Linear(dim, len(ATTRIBUTE_VALUES[a])) for a in ATTRIBUTES})
        self.text = nn.ModuleDict({a: nn.Linear(dim, len(ATTRIBUTE_VALUES[a]) + 1) for a in ATTRIBUTES})

    def loss(self, image_features, labels, text_features, content) -> torch.Tensor:
        total = 0.0
        for i, a in enumerate(ATTRIBUTES):
            total = total + F.cross_entropy(self.image[a](image_features), labels[:, i])
            # Class 0 is "unnamed"; value v is class v + 1.
            total = total + F.cross_entropy(self.text[a](text_features), content[:, i] + 1)
        return total / (2 * len(ATTRIBUTES))


def sigmoid_truth_loss(image_emb, text_emb, truth, logit_scale, logit_bias) -> torch.Tensor:
    logits = logit_scale.exp() * image_emb @ text_emb.T + logit_bias
    signs = truth.float() * 2 - 1
    return -F.logsigmoid(signs * logits).sum() / len(image_emb)


def without_pairs(content: torch.Tensor, pairs: frozenset[tuple[int, int]], g: torch.Generator) -> torch.Tensor:
    """Captions naming one of `pairs` (shape, colour) lose, at random, their shape or their
    colour, so that both words are still learnt on the pair's images."""
    held = torch.tensor(sorted(pairs))
    hit = ((content[:, None, :2] == held[None]).all(-1)).any(1)
    drop_shape = torch.rand(len(content), generator=g) < 0.5
    out = content.clone()
    out[hit & drop_shape, 0] = UNNAMED
    out[hit & ~drop_shape, 1] = UNNAMED
    return out


def caption_batch(labels: torch.Tensor, g: torch.Generator, rng: random.Random):
    """True captions and one-attribute-off hard negatives (the other images' captions are the
    easy negatives)."""
    positives = sample_content(labels, g)
    hard = perturb_content(positives, g)
    content = without_pairs(torch.cat([positives, hard]), HELD_OUT_PAIRS, g)
    return content, [caption_text(c, rng) for c in content]


def lock_trunk(visual: nn.Module) -> None:
    """Freeze everything below the attention pool, batch-norm statistics included."""
    for name, param in visual.named_parameters():
        param.requires_grad_(name.startswith("attnpool."))


def training_mode(model: nn.Module) -> nn.Module:
    """Train mode except for the locked image trunk (the attention pool has no batch norm or
    dropout, so eval mode changes nothing there)."""
    model.train()
    model.visual.eval()
    return model


def locked_image_features(visual: nn.Module, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        x = visual.stem(images)
        for layer in (visual.layer1, visual.layer2, visual.layer3, visual.layer4):
            x = layer(x)
    return visual.attnpool(x)


def lr_at(step: int, cfg: ClipTrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


class ClipTrainer(StateDicts):
    """The mini-CLIP: `image_pretrain_steps` of attribute labels alone on the image tower
    (constant learning rate), then the trunk locked and the rest trained contrastively (warmup
    and cosine decay); `evaluate` measures zero-shot accuracy and retrieval on fresh renders."""

    STATE_DICTS = ("model", "heads", "opt")

    def __init__(self, cfg: ClipTrainConfig, g: torch.Generator):
        if cfg.steps < 1:
            raise ConfigError(f"model.iterations ({cfg.iterations}) must exceed model.image_pretrain_steps "
                              f"({cfg.image_pretrain_steps}): the contrastive steps come after them")
        self.cfg, self.g, self.rng = cfg, g, random.Random(g.initial_seed())
        self.model = build_open_clip(WORLD_CLIP)
        self.tokenizer = tokenizer_of(WORLD_CLIP)
        self.heads = AuxHeads(self.model.text_projection.shape[1])
        self.mean = torch.tensor(self.model.visual.image_mean).view(1, 3, 1, 1)
        self.std = torch.tensor(self.model.visual.image_std).view(1, 3, 1, 1)
        self.model.train()
        params = list(self.model.visual.parameters()) + list(self.heads.image.parameters())
        self.opt = torch.optim.AdamW(params, lr=cfg.pretrain_lr, weight_decay=cfg.weight_decay)
        self.iteration = 0

    def contrastive(self) -> bool:
        return self.iteration >= self.cfg.image_pretrain_steps

    def lock(self) -> None:
        """The trunk locked; the text tower, attention pool and heads get their own optimiser."""
        lock_trunk(self.model.visual)
        training_mode(self.model)
        params = [p for p in list(self.model.parameters()) + list(self.heads.parameters()) if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        self.opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.cfg.lr,
        )

    def pretrain_step(self) -> dict[str, float]:
        batch = scene_batch(self.cfg.batch_size, self.g)
        features = self.model.visual((batch.images - self.mean) / self.std)
        loss = sum(F.cross_entropy(self.heads.image[a](features), batch.labels[:, i]) for i, a in enumerate(ATTRIBUTES))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"pretrain_loss": loss.item()}

    def contrastive_step(self) -> dict[str, float]:
        step = self.iteration - self.cfg.image_pretrain_steps
        for group in self.opt.param_groups:
            group["lr"] = lr_at(step, self.cfg)
        batch = scene_batch(self.cfg.batch_size, self.g)
        content, texts = caption_batch(batch.labels, self.g, self.rng)
        image_features = locked_image_features(self.model.visual, (batch.images - self.mean) / self.std)
        text_features = self.model.encode_text(self.tokenizer(texts))
        truth = truth_matrix(batch.labels, content)
        contrastive = sigmoid_truth_loss(
            F.normalize(image_features, dim=-1),
            F.normalize(text_features, dim=-1),
            truth,
            self.model.logit_scale,
            self.model.logit_bias,
        )
        aux = self.heads.loss(image_features, batch.labels, text_features, content)
        loss = contrastive + self.cfg.aux_weight * aux
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item(), "contrastive": contrastive.item(), "aux": aux.item(), "lr": lr_at(step, self.cfg)}

    def step(self) -> dict[str, float]:
        if self.iteration == self.cfg.image_pretrain_steps:
            self.lock()
        metrics = self.contrastive_step() if self.contrastive() else self.pretrain_step()
        self.iteration += 1
        return metrics

    def train_mode(self) -> None:
        if self.iteration > self.cfg.image_pretrain_steps:
            training_mode(self.model)
        else:
            self.model.train()

    def evaluate(self, n: int) -> dict[str, float]:
        metrics = evaluate_scorer(OpenClipScorer(self.model.eval(), WORLD_CLIP), n=n)
        self.train_mode()
        return metrics

    def network(self) -> nn.Module:
        return self.model.eval().requires_grad_(True)

    def architecture(self) -> dict:
        return {"open_clip_model": WORLD_CLIP} | open_clip.get_model_config(WORLD_CLIP)

    def state(self) -> dict:
        return super().state() | {"iteration": self.iteration, "rng": self.rng.getstate()}

    def load_state(self, state: dict) -> None:
        self.iteration = state["iteration"]
        if self.iteration > self.cfg.image_pretrain_steps:
            self.lock()  # the contrastive phase's optimiser, whose state was saved
        super().load_state(state)
        self.train_mode()
        self.rng.setstate(state["rng"])
