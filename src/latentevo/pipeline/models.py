"""The models a pack shares: generator, scorer and realness model built once, the evaluation
classifiers built once per config, and the batched fitness that scores every run's candidates
together."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ..devices import resolve_device
from ..errors import ConfigError, LatentevoError
from ..evaluation.evaluate import Evaluation, build_evaluation
from ..models.base import Generator, Scorer
from ..models.realness import Realness

#: batch_size=auto by device type: the fastest measured on 2 CPU cores; a GPU's for large models
AUTO_BATCH_SIZE = {"cpu": 64, "cuda": 256}
#: the global seed the shared models are built under (randomly initialised ones are then the
#: same in every pack, whichever seeds its runs have)
MODEL_SEED = 0


def build(node: DictConfig, **kwargs):
    """`instantiate`, with our own errors (missing weights, bad sizes) kept as they are rather
    than wrapped in Hydra's InstantiationException."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, LatentevoError):
            raise err.__cause__ from None
        raise


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_scorer(cfg: DictConfig, device: torch.device) -> Scorer:
    scorer = build(cfg.clip)
    if cfg.augment:
        scorer = build(cfg.augment, scorer=scorer)
    return scorer.to(device)


@dataclass
class Request:
    """One run's share of a pack's fitness pass."""

    latents: np.ndarray  # (n, latent_dim)
    text_embedding: torch.Tensor  # (D,)
    views: torch.Tensor | None  # the scorer's view parameters for these n images


@dataclass
class Scores:
    """One request's share of a fitness pass: each image's cos_sim and, with a realness model,
    how real it looks (D(x) in [0, 1])."""

    cos_sim: np.ndarray  # (n,)
    realness: np.ndarray | None = None  # (n,)


@dataclass
class Models:
    device: torch.device
    generator: Generator
    scorer: Scorer
    batch_size: int
    realness: Realness | None = None
    _evaluations: dict[str, Evaluation] = field(default_factory=dict)

    @classmethod
    def of(cls, cfg: DictConfig) -> Models:
        """The generator, scorer and realness model of `cfg` (any run of the pack), on its device."""
        seed_everything(MODEL_SEED)
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        device = resolve_device(cfg.device)
        generator: Generator = build(cfg.generator).to(device)
        batch_size = AUTO_BATCH_SIZE.get(device.type, 64) if cfg.batch_size == "auto" else cfg.batch_size
        realness = build(cfg.realness).to(device) if cfg.get("realness") else None
        return cls(device, generator, build_scorer(cfg, device), batch_size, realness)

    def check_prompt(self, prompt: str) -> None:
        tokens = self.scorer.count_tokens(prompt)
        if tokens > self.scorer.context_length:
            raise ConfigError(
                f"prompt is {tokens} tokens, longer than the scorer's context of {self.scorer.context_length}; "
                "shorten it"
            )

    @torch.inference_mode()
    def embed_prompt(self, prompt: str) -> torch.Tensor:
        return self.scorer.embed_text([prompt])[0]

    def evaluation(self, cfg: DictConfig) -> Evaluation | None:
        """The run's evaluation; runs with the same evaluation config share its classifier."""
        if not cfg.get("evaluation"):
            return None
        key = json.dumps(OmegaConf.to_container(cfg.evaluation.classifier, resolve=True), sort_keys=True)
        shared = self._evaluations.get(key)
        evaluation = build_evaluation(cfg, self.device, build, self.batch_size, shared.classifier if shared else None)
        self._evaluations.setdefault(key, evaluation)
        return evaluation

    def fitness(self, requests: list[Request]) -> list[np.ndarray]:
        """Every request's cos_sims (`scores` without realness)."""
        return [scores.cos_sim for scores in self.scores(requests)]

    @torch.inference_mode()
    def scores(self, requests: list[Request]) -> list[Scores]:
        """Every request's cos_sims (and realness), from one pass over all their latents in chunks
        of `batch_size` images; each image is scored against its own run's prompt. A chunk that
        runs out of GPU memory is retried in halves, and the size that fits is kept."""
        sizes = [len(r.latents) for r in requests]
        if not sum(sizes):
            empty = None if self.realness is None else np.empty(0)
            return [Scores(np.empty(0), empty) for _ in requests]
        z = torch.from_numpy(np.concatenate([r.latents for r in requests])).float()
        text = torch.cat([r.text_embedding.expand(n, -1) for r, n in zip(requests, sizes)])
        views = None if self.scorer.views == 1 else torch.cat([r.views for r in requests])
        while True:
            try:
                sims, realness = self._score(z, text, views)
                break
            except torch.cuda.OutOfMemoryError:
                if self.batch_size == 1:
                    raise ConfigError("out of GPU memory with one latent per forward pass; use precision=fp16, "
                                      "a smaller generator or device=cpu") from None
                self.batch_size = max(1, self.batch_size // 2)
                torch.cuda.empty_cache()
        splits = np.cumsum(sizes)[:-1]
        per_request = np.split(sims.double().cpu().numpy(), splits)
        if realness is None:
            return [Scores(s) for s in per_request]
        return [Scores(s, r) for s, r in zip(per_request, np.split(realness.double().cpu().numpy(), splits))]

    def _score(self, z: torch.Tensor, text: torch.Tensor,
               views: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        k = self.scorer.views
        # chunks of at most batch_size images (views included), of near-equal sizes: no small
        # remainder, whose convolutions could take another kernel than the runs' alone
        bounds = np.linspace(0, len(z), math.ceil(len(z) * k / self.batch_size) + 1).round().astype(int)
        sims, realness = [], []
        for start, stop in zip(bounds[:-1], bounds[1:]):
            images = self.generator(z[start:stop])
            params = None if views is None else views[start * k : stop * k]
            embedded = self.scorer.embed_images(self.scorer.apply_views(images, params))
            rows = text[start:stop].to(embedded.device).repeat_interleave(k, dim=0)
            sims.append((embedded * rows).sum(1).view(-1, k).mean(1))
            if self.realness is not None:
                realness.append(self.realness(images))  # the same images, judged as they are
        return torch.cat(sims), torch.cat(realness) if realness else None
