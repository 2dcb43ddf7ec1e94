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
import torch.nn.functional as F
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ..devices import resolve_device
from ..errors import ConfigError, LatentevoError
from ..evaluation.evaluate import Evaluation, build_evaluation
from ..models.base import Generator, Scorer
from ..models.realness import Realness
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
    grad: bool = False  # the run also needs d cos_sim / d latent (gradient search)


@dataclass
class Scores:
    """One request's share of a fitness pass: each image's cos_sim to each of its run's targets
    and, with a realness model, how real it looks (D(x) in [0, 1]); for a request with `grad`,
    d cos_sim / d latent per target. The run combines the terms (pipeline/terms.py)."""

    terms: np.ndarray  # (n, T)
    realness: np.ndarray | None = None  # (n,)
    gradient: np.ndarray | None = None  # (n, T, latent_dim); the run's, (n, latent_dim), once combined
    cos_sim: np.ndarray | None = None  # (n,) the run's fitness, its terms combined (terms.combine_scores)


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

    def scores(self, requests: list[Request]) -> list[Scores]:
        """Every request's (n, T) cos_sims to its T targets (with a realness model, realness; with
        `grad`, gradients).
        The requests that need gradients are scored in a pass of their own, so that a run's
        chunks are the same in a pack as alone."""
        scored: dict[int, Scores] = {}
        for grad, score in ((False, self._cos_sims), (True, self._cos_sims_with_gradient)):
            part = [i for i, r in enumerate(requests) if r.grad == grad]
            if part:
                scored |= dict(zip(part, score([requests[i] for i in part])))
        return [scored[i] for i in range(len(requests))]

    def _inputs(self, requests: list[Request]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """All the requests' latents, (T, D) targets per latent (runs with fewer terms padded with
        zero targets, whose cos_sims `_split` drops), and the views' parameters."""
        sizes, terms = [len(r.latents) for r in requests], [len(r.targets) for r in requests]
        z = torch.from_numpy(np.concatenate([r.latents for r in requests])).float()
        text = torch.cat([F.pad(r.targets, (0, 0, 0, max(terms) - t)).expand(n, -1, -1)
                          for r, n, t in zip(requests, sizes, terms)])
        views = None if self.scorer.views == 1 else torch.cat([r.views for r in requests])
        return z, text, views

    @torch.inference_mode()
    def _cos_sims(self, requests: list[Request]) -> list[Scores]:
        """Every request's cos_sims (and realness), from one pass over all their latents in chunks
        of `batch_size` images; each image is scored against its own run's prompt."""
        sizes = [len(r.latents) for r in requests]
        if not sum(sizes):
            empty = None if self.realness is None else np.empty(0)
            return [Scores(np.empty((0, len(r.targets))), empty) for r in requests]
        sims, realness = self._retrying(self._score, *self._inputs(requests))
        per_request = _split(sims, requests)
        if realness is None:
            return [Scores(s) for s in per_request]
        splits = np.cumsum(sizes)[:-1]
        return [Scores(s, r) for s, r in zip(per_request, np.split(realness.double().cpu().numpy(), splits))]

    def _cos_sims_with_gradient(self, requests: list[Request]) -> list[Scores]:
        """As `_cos_sims`, with each cos_sim's gradient with respect to its latent."""
        sizes = [len(r.latents) for r in requests]
        if not sum(sizes):
            return [Scores(np.empty((0, len(r.targets))), gradient=np.empty((0, len(r.targets),
                                                                              self.generator.latent_dim)))
                    for r in requests]
        sims, grads = self._retrying(self._score_with_gradient, *self._inputs(requests))
        return [Scores(s, gradient=g) for s, g in zip(_split(sims, requests), _split(grads, requests))]

    def _retrying(self, score, *inputs):
        """`score(*inputs)`; a chunk that runs out of GPU memory is retried in halves, and the
        size that fits is kept."""
        while True:
            try:
                return score(*inputs)
            except torch.cuda.OutOfMemoryError:
                if self.batch_size == 1:
                    raise ConfigError("out of GPU memory with one latent per forward pass; use precision=fp16, "
                                      "a smaller generator or device=cpu") from None
                self.batch_size = max(1, self.batch_size // 2)
                torch.cuda.empty_cache()

    def _chunks(self, n: int) -> list[tuple[int, int]]:
        """Chunks of at most batch_size images (views included), of near-equal sizes: no small
        remainder, whose convolutions could take another kernel than the runs' alone."""
        bounds = np.linspace(0, n, math.ceil(n * self.scorer.views / self.batch_size) + 1).round().astype(int)
        return list(zip(bounds[:-1], bounds[1:]))

    def _score(self, z: torch.Tensor, text: torch.Tensor,
               views: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        k = self.scorer.views
        sims, realness = [], []
        for start, stop in self._chunks(len(z)):
            images = self.generator(z[start:stop])
            params = None if views is None else views[start * k : stop * k]
            embedded = self.scorer.embed_images(self.scorer.apply_views(images, params))
            rows = text[start:stop].to(embedded.device).repeat_interleave(k, dim=0)
            # term by term, each with the same arithmetic as a one-term run's, so that a term's
            # cos_sims do not depend on how many terms its run or pack has
            sims.append(torch.stack([(embedded * rows[:, t]).sum(1).view(-1, k).mean(1)
                                     for t in range(rows.shape[1])], dim=1))
            if self.realness is not None:
                realness.append(self.realness(images))  # the same images, judged as they are
        return torch.cat(sims), torch.cat(realness) if realness else None

    def _score_with_gradient(self, z: torch.Tensor, text: torch.Tensor,
                             views: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """cos_sims and d cos_sim / d latent by autograd, a backward pass per chunk and target
        (`_score`'s chunks, so memory holds one chunk's graph): each image depends on its own
        latent alone (the networks are in eval mode), so the gradient of a chunk's sum is every
        latent's own."""
        k = self.scorer.views
        # the prompt's embedding was made in inference mode, whose tensors autograd cannot save
        text = text.clone()
        sims, grads = [], []
        for start, stop in self._chunks(len(z)):
            latents = z[start:stop].clone().requires_grad_(True)
            params = None if views is None else views[start * k : stop * k]
            chunk, _ = self._score(latents, text[start:stop], params)
            terms = chunk.shape[1]
            grads.append(torch.stack([torch.autograd.grad(chunk[:, t].sum(), latents, retain_graph=t < terms - 1)[0]
                                      for t in range(terms)], dim=1))
            sims.append(chunk.detach())
        return torch.cat(sims), torch.cat(grads)


def _split(values: torch.Tensor, requests: list[Request]) -> list[np.ndarray]:
    """Each request's rows of a pass's (N, T_max, ...) values, less its padding terms."""
    shares = np.split(values.double().cpu().numpy(), np.cumsum([len(r.latents) for r in requests])[:-1])
    return [share[:, : len(r.targets)] for share, r in zip(shares, requests)]
