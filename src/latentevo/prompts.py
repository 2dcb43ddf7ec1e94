"""What a run's fitness aims at: prompt algebra and image prompts, parsed before any model loads.

`prompt="a red star | a blue background:0.5 | -a red background"` is three text terms, separated
by `|`, each `text[:weight]` (weight 1 by default, a positive finite number); a leading `-` makes
a term a penalty (its weight negated). `image_prompt` adds one image term: a file
(`path/to.png`) or, in the shapes world, a scene rendered from its attributes
(`scene:shape=star,colour=red,background=blue`), weighted by `image_prompt_weight`. The fitness
is the weighted sum of the terms' cos_sims; a plain prompt (one text term, weight 1) is the
cos_sim itself, as it always was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .world.attributes import ATTRIBUTE_VALUES, ATTRIBUTES

SCENE_PREFIX = "scene:"
#: what a scene image prompt must name: the attributes every image has a value of
SCENE_REQUIRED = ("shape", "colour", "background")


@dataclass(frozen=True)
class Term:
    """One text term, or the image term (`image` set, `text` empty)."""

    text: str
    weight: float
    image: str | None = None

    @property
    def label(self) -> str:
        """How logs name the term: its text (with its sign), or `image:<source>`."""
        name = f"image:{self.image}" if self.image is not None else self.text
        return f"{'-' if self.weight < 0 else ''}{name}:{abs(self.weight):g}"


@dataclass(frozen=True)
class Prompt:
    terms: tuple[Term, ...]

    @property
    def weights(self) -> list[float]:
        return [t.weight for t in self.terms]

    @property
    def is_plain(self) -> bool:
        """One text term of weight 1: fitness and metrics are those of a prompt without algebra."""
        return len(self.terms) == 1 and self.terms[0].image is None and self.terms[0].weight == 1

    @property
    def positive_texts(self) -> list[str]:
        return [t.text for t in self.terms if t.image is None and t.weight > 0]

    @property
    def image(self) -> Term | None:
        return next((t for t in self.terms if t.image is not None), None)


def parse_weight(text: str, where: str) -> float:
    try:
        weight = float(text)
    except ValueError:
        weight = math.nan
    if not math.isfinite(weight) or weight <= 0:
        raise ConfigError(f"{where} has weight {text!r}; a weight must be a positive finite number "
                          "(a leading - makes a term a penalty)")
    return weight


def parse_term(raw: str, index: int) -> Term:
    """`text[:weight]`, a leading `-` negating the weight."""
    where = f"prompt term {index} ({raw.strip()!r})"
    text, sign = raw.strip(), 1.0
    if text.startswith("-"):
        text, sign = text[1:].strip(), -1.0
    weight = 1.0
    if ":" in text:
        text, _, weight_text = text.rpartition(":")
        text = text.strip()
        weight = parse_weight(weight_text.strip(), where)
    if not text:
        raise ConfigError(f"{where} is empty; write terms as 'text[:weight]' separated by |, "
                          "e.g. prompt='a red star | -a red background'")
    return Term(text, sign * weight)


def parse_text(prompt: str | None) -> list[Term]:
    if prompt is None or not prompt.strip():
        return []
    return [parse_term(raw, i) for i, raw in enumerate(prompt.split("|"))]


def parse_scene(spec: str) -> dict[str, str]:
    """`shape=star,colour=red,background=blue[,size=big][,position=left]` -> attribute values."""
    attributes = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, value = (s.strip() for s in item.partition("="))
        if name not in ATTRIBUTE_VALUES:
            raise ConfigError(f"image_prompt scene attribute {name!r} is unknown; known: {', '.join(ATTRIBUTES)}")
        if value not in ATTRIBUTE_VALUES[name]:
            raise ConfigError(f"image_prompt scene {name}={value!r} is not one of "
                              f"{', '.join(ATTRIBUTE_VALUES[name])}")
        attributes[name] = value
    missing = [a for a in SCENE_REQUIRED if a not in attributes]
    if missing:
        raise ConfigError(f"image_prompt scene names no {', '.join(missing)}; "
                          "e.g. image_prompt='scene:shape=star,colour=red,background=blue'")
    if attributes["colour"] == attributes["background"]:
        raise ConfigError("image_prompt scene has the object's colour as its background; the shapes world "
                          "never draws that")
    return attributes


def is_scene(image_prompt: str) -> bool:
    return image_prompt.startswith(SCENE_PREFIX)


def image_file(image_prompt: str | None) -> Path | None:
    """The file an image prompt reads (None for none or a scene)."""
    if not image_prompt or is_scene(image_prompt):
        return None
    return Path(image_prompt).expanduser()


def check_image_prompt(image_prompt: str) -> None:
    """What can be checked without reading the image: a scene's attributes, the file's presence."""
    if is_scene(image_prompt):
        parse_scene(image_prompt.removeprefix(SCENE_PREFIX))
        return
    path = image_file(image_prompt)
    if not path.exists():
        raise ConfigError(f"image_prompt file {path} does not exist; give an image file or "
                          "'scene:shape=...,colour=...,background=...'")
    if not path.is_file():
        raise ConfigError(f"image_prompt {path} is not a file; give an image file")


def parse(prompt: str | None, image_prompt: str | None = None, image_prompt_weight: float = 1.0) -> Prompt:
    """The run's terms; a prompt that is empty and no image prompt is refused."""
    terms = parse_text(prompt)
    if image_prompt:
        check_image_prompt(image_prompt)
        weight = parse_weight(str(image_prompt_weight), "image_prompt_weight")
        terms.append(Term("", weight, image_prompt))
    if not terms:
        raise ConfigError("prompt is empty; give one, e.g. prompt='a red circle' (or an image_prompt)")
    return Prompt(tuple(terms))


def of_config(cfg) -> Prompt:
    return parse(cfg.prompt, cfg.get("image_prompt"), cfg.get("image_prompt_weight", 1.0))
