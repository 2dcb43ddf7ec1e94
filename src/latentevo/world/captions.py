"""Captions of scenes, prompt parsing, and which captions are true of which images.

A caption's content is a row of value indices, one per attribute in `ATTRIBUTES`, with -1 for
an attribute the caption does not name.
"""

from __future__ import annotations

import random
import re

import torch

from . import attributes as A

UNNAMED = -1
# How often a sampled caption names each attribute (shape, colour, size, position, background).
NAME_PROBABILITY = (0.85, 0.85, 0.45, 0.45, 0.45)


def caption_text(content: list[int] | torch.Tensor, rng: random.Random) -> str:
    """Words for a caption content row, through a random template and random synonyms."""
    shape, colour, size, position, background = (int(v) for v in content)

    def word(attr: str, value: str) -> str:
        return rng.choice(A.SYNONYMS[attr][value])

    obj_words = []
    if size != UNNAMED:
        obj_words.append(word("size", A.SIZES[size]))
    if colour != UNNAMED:
        obj_words.append(word("colour", A.COLOURS[colour]))
    obj_words.append(word("shape", A.SHAPES[shape]) if shape != UNNAMED else "shape")
    obj = " ".join(obj_words)
    templates = [
        t
        for t in A.TEMPLATES
        if ("{pos}" in t) == (position != UNNAMED) and ("{bg}" in t) == (background != UNNAMED)
    ]
    fill = {"a": A.article(obj), "obj": obj}
    if position != UNNAMED:
        fill["pos"] = word("position", A.POSITIONS[position])
    if background != UNNAMED:
        fill["bg"] = A.COLOURS[background]
        fill["a_bg"] = A.article(fill["bg"])
    return rng.choice(templates).format(**fill)


def sample_content(labels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """For (B, 5) true labels, a (B, 5) caption content naming a random non-empty subset."""
    named = torch.rand(labels.shape, generator=g) < torch.tensor(NAME_PROBABILITY)
    nothing = ~named.any(1)
    named[nothing, 0] = True
    return torch.where(named, labels, UNNAMED)


def perturb_content(content: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Hard negatives: each caption with one named attribute changed to another value."""
    sizes = torch.tensor([len(A.ATTRIBUTE_VALUES[a]) for a in A.ATTRIBUTES])
    scores = torch.rand(content.shape, generator=g).masked_fill(content == UNNAMED, -1)
    which = scores.argmax(1)
    rows = torch.arange(len(content))
    n_values = sizes[which]
    shift = 1 + (torch.rand(len(content), generator=g) * (n_values - 1)).long()
    out = content.clone()
    out[rows, which] = (content[rows, which] + shift) % n_values
    return out


def truth_matrix(labels: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """(B, T) bool: caption t is true of image b (every attribute it names matches)."""
    unnamed = (content == UNNAMED)[None]
    return (unnamed | (labels[:, None, :] == content[None])).all(-1)


def content_dict(content: list[int] | torch.Tensor) -> dict[str, str]:
    return {a: A.ATTRIBUTE_VALUES[a][int(v)] for a, v in zip(A.ATTRIBUTES, content) if int(v) != UNNAMED}


def _find(text: str, phrases: dict[str, tuple[str, ...]], values: tuple[str, ...]) -> tuple[int, int]:
    """(value index, character position) of the earliest phrase found, or (UNNAMED, -1)."""
    best = (UNNAMED, -1)
    for value, words in phrases.items():
        for w in words:
            m = re.search(rf"\b{re.escape(w)}s?\b", text)
            if m and (best[1] < 0 or m.start() < best[1]):
                best = (values.index(value), m.start())
    return best


def parse_prompt(prompt: str) -> list[int]:
    """The attribute content a prompt names, read with the world's vocabulary and synonyms.

    A colour directly before "background" (or after a final "on") names the background; the
    first other colour names the object.
    """
    text = " ".join(prompt.lower().split())
    background = UNNAMED
    colour_words = "|".join(w for ws in A.SYNONYMS["colour"].values() for w in ws)
    m = re.search(rf"\b({colour_words})\s+background\b", text) or re.search(
        rf"\bon\s+(?:an?\s+)?({colour_words})\s*$", text
    )
    if m:
        word = m.group(1)
        background = next(A.COLOURS.index(c) for c, ws in A.SYNONYMS["colour"].items() if word in ws)
        text = text[: m.start(1)] + text[m.end(1) :]
    shape, _ = _find(text, A.SYNONYMS["shape"], A.SHAPES)
    colour, _ = _find(text, A.SYNONYMS["colour"], A.COLOURS)
    size, _ = _find(text, A.SYNONYMS["size"], A.SIZES)
    position, _ = _find(text, A.SYNONYMS["position"], A.POSITIONS)
    return [shape, colour, size, position, background]
