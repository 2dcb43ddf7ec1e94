"""Zero-shot evaluation of a scorer on held-out shapes-world renders."""

from __future__ import annotations

import random

import torch

from ..models.base import Scorer
from ..world import ATTRIBUTE_VALUES, ATTRIBUTES, COLOURS, SHAPES, caption_text
from ..world.captions import truth_matrix
from .data import HELD_OUT_PAIRS, scene_batch

# One prompt per value, naming that attribute alone.
ZERO_SHOT_PROMPTS: dict[str, str] = {
    "shape": "a {}",
    "colour": "a {} shape",
    "size": "a {} shape",
    "position": "a shape {}",
    "background": "a shape on a {} background",
}
POSITION_WORDS = {"centre": "in the centre", "left": "on the left", "right": "on the right", "top": "at the top",
                  "bottom": "at the bottom"}


def _prompt(attr: str, value: str) -> str:
    return ZERO_SHOT_PROMPTS[attr].format(POSITION_WORDS.get(value, value) if attr == "position" else value)


@torch.no_grad()
def _embed_images(scorer: Scorer, images: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    return torch.cat([scorer.embed_images(images[i : i + chunk]) for i in range(0, len(images), chunk)])


@torch.no_grad()
def evaluate_scorer(scorer: Scorer, n: int = 2000, seed: int = 12345, resolution: int = 64) -> dict[str, float]:
    """Zero-shot accuracy per attribute, on all renders and on held-out shape x colour pairs;
    accuracy of naming the shape-and-colour pair among all 48; caption retrieval recall@1."""
    g = torch.Generator().manual_seed(seed)
    batch = scene_batch(n, g, resolution=resolution, augment=False)
    image_emb = _embed_images(scorer, batch.images)
    labels = batch.labels
    pair = labels[:, 0] * len(COLOURS) + labels[:, 1]
    held = torch.tensor([s * len(COLOURS) + c for s, c in HELD_OUT_PAIRS])
    is_held = torch.isin(pair, held)
    metrics: dict[str, float] = {}
    for i, attr in enumerate(ATTRIBUTES):
        text_emb = scorer.embed_text([_prompt(attr, v) for v in ATTRIBUTE_VALUES[attr]])
        correct = ((image_emb @ text_emb.T).argmax(1) == labels[:, i]).float()
        metrics[f"zeroshot_{attr}"] = correct.mean().item()
        if attr in ("shape", "colour"):
            metrics[f"zeroshot_{attr}_heldout_pairs"] = correct[is_held].mean().item()
    pair_prompts = [f"a {c} {s}" for s in SHAPES for c in COLOURS]
    pair_correct = ((image_emb @ scorer.embed_text(pair_prompts).T).argmax(1) == pair).float()
    metrics["zeroshot_shape_colour"] = pair_correct.mean().item()
    metrics["zeroshot_shape_colour_heldout_pairs"] = pair_correct[is_held].mean().item()
    metrics.update(_retrieval(scorer, image_emb, labels, seed))
    return metrics


def _retrieval(
    scorer: Scorer, image_emb: torch.Tensor, labels: torch.Tensor, seed: int, k: int = 500
) -> dict[str, float]:
    """Recall@1 between k images and their full captions (every attribute named); a retrieved
    item counts as correct when the caption is true of the image."""
    rng = random.Random(seed)
    image_emb, labels = image_emb[:k], labels[:k]
    text_emb = scorer.embed_text([caption_text(row, rng) for row in labels])
    sims = image_emb @ text_emb.T
    truth = truth_matrix(labels, labels)
    rows = torch.arange(len(labels))
    return {
        "retrieval_image_to_text_r1": truth[rows, sims.argmax(1)].float().mean().item(),
        "retrieval_text_to_image_r1": truth[sims.argmax(0), rows].float().mean().item(),
    }
