"""The models a pack shares: generator and scorer built once, the evaluation classifiers built
once per config, and the batched fitness that scores every run's candidates together."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ..devices import resolve_device
from ..errors import ConfigError, LatentevoError
from ..evaluation.evaluate import Evaluation, build_evaluation
from ..models.base import Generator, Scorer
from ..prompts import Prompt
from .targets import target_embeddings

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
    targets: torch.Tensor  # (T, D) the run's unit-norm targets, one per prompt term
    views: torch.Tensor | None  # the scorer's view parameters for these n images


@dataclass
class Models:
    device: torch.device
    generator: Generator
    scorer: Scorer
    batch_size: int
    _evaluations: dict[str, Evaluation] = field(default_factory=dict)

    @classmethod
    def of(cls, cfg: DictConfig) -> Models:
        """The generator and scorer of `cfg` (any run of the pack), on its device."""
        seed_everything(MODEL_SEED)
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        device = resolve_device(cfg.device)
        generator: Generator = build(cfg.generator).to(device)
        batch_size = AUTO_BATCH_SIZE.get(device.type, 64) if cfg.batch_size == "auto" else cfg.batch_size
        return cls(device, generator, build_scorer(cfg, device), batch_size)

    def check_prompt(self, prompt: Prompt) -> None:
        """Every text term fits the scorer's context."""
        for i, term in enumerate(prompt.terms):
            tokens = 0 if term.image is not None else self.scorer.count_tokens(term.text)
            if tokens > self.scorer.context_length:
                which = "prompt" if prompt.is_plain else f"prompt term {i} ({term.text!r})"
                raise ConfigError(f"{which} is {tokens} tokens, longer than the scorer's context of "
                                  f"{self.scorer.context_length}; shorten it")

    def targets(self, prompt: Prompt) -> torch.Tensor:
        """(T, D): the embedding of each of the prompt's terms."""
        return target_embeddings(self.scorer, prompt)

    def evaluation(self, cfg: DictConfig) -> Evaluation | None:
        """The run's evaluation; runs with the same evaluation config share its classifier."""
        if not cfg.get("evaluation"):
            return None
        key = json.dumps(OmegaConf.to_container(cfg.evaluation.classifier, resolve=True), sort_keys=True)
        shared = self._evaluations.get(key)
        evaluation = build_evaluation(cfg, self.device, build, self.batch_size, shared.classifier if shared else None)
        self._evaluations.setdefault(key, evaluation)
        return evaluation

    @torch.inference_mode()
    def fitness(self, requests: list[Request]) -> list[np.ndarray]:
        """Every request's (n, T) cos_sims to each of its run's T targets, from one pass over all
        their latents in chunks of `batch_size` images; each image is scored against its own
        run's targets. A chunk that runs out of GPU memory is retried in halves, and the size
        that fits is kept."""
        sizes, terms = [len(r.latents) for r in requests], [len(r.targets) for r in requests]
        if not sum(sizes):
            return [np.empty((0, t)) for t in terms]
        z = torch.from_numpy(np.concatenate([r.latents for r in requests])).float()
        # runs with fewer terms padded with zero targets, whose cos_sims are dropped below
        text = torch.cat([F.pad(r.targets, (0, 0, 0, max(terms) - t)).expand(n, -1, -1)
                          for r, n, t in zip(requests, sizes, terms)])
        views = None if self.scorer.views == 1 else torch.cat([r.views for r in requests])
        while True:
            try:
                sims = self._score(z, text, views)
                break
            except torch.cuda.OutOfMemoryError:
                if self.batch_size == 1:
                    raise ConfigError("out of GPU memory with one latent per forward pass; use precision=fp16, "
                                      "a smaller generator or device=cpu") from None
                self.batch_size = max(1, self.batch_size // 2)
                torch.cuda.empty_cache()
        shares = np.split(sims.double().cpu().numpy(), np.cumsum(sizes)[:-1])
        return [share[:, :t] for share, t in zip(shares, terms)]

    def _score(self, z: torch.Tensor, text: torch.Tensor, views: torch.Tensor | None) -> torch.Tensor:
        k = self.scorer.views
        # chunks of at most batch_size images (views included), of near-equal sizes: no small
        # remainder, whose convolutions could take another kernel than the runs' alone
        bounds = np.linspace(0, len(z), math.ceil(len(z) * k / self.batch_size) + 1).round().astype(int)
        sims = []
        for start, stop in zip(bounds[:-1], bounds[1:]):
            images = self.generator(z[start:stop])
            params = None if views is None else views[start * k : stop * k]
            embedded = self.scorer.embed_images(self.scorer.apply_views(images, params))
            rows = text[start:stop].to(embedded.device).repeat_interleave(k, dim=0)
            # term by term, each with the same arithmetic as a one-term run's, so that a term's
            # cos_sims do not depend on how many terms its run or pack has
            sims.append(torch.stack([(embedded * rows[:, t]).sum(1).view(-1, k).mean(1)
                                     for t in range(rows.shape[1])], dim=1))
        return torch.cat(sims)
