"""What each generation of a run is measured by: the population's scores and spread, and,
for generators with a ground truth (the shapes world), what the images really show."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models.base import Generator
from ..models.realness import Realness
from ..prompts import SCENE_PREFIX, Prompt, is_scene, parse, parse_scene
from ..search import Generation, hypervolume, population_diversity


def target_content(prompt: Prompt) -> list[int]:
    """The attribute values the positive text terms name (the first term to name one wins),
    then those of a scene image prompt; UNNAMED where none does."""
    from ..world import ATTRIBUTE_VALUES, ATTRIBUTES
    from ..world.captions import UNNAMED, parse_prompt

    named = [parse_prompt(text) for text in prompt.positive_texts]
    image = prompt.image
    if image is not None and is_scene(image.image):
        scene = parse_scene(image.image.removeprefix(SCENE_PREFIX))
        named.append([ATTRIBUTE_VALUES[a].index(scene[a]) if a in scene else UNNAMED for a in ATTRIBUTES])
    content = [UNNAMED] * len(ATTRIBUTES)
    for values in named:
        content = [c if c != UNNAMED else v for c, v in zip(content, values)]
    return content


def scene_labels(generator: Generator, latents: np.ndarray) -> dict[str, torch.Tensor]:
    """The ground-truth value index of each attribute of each latent's image, each (B,)."""
    return generator.scenes(torch.from_numpy(latents).float()).labels()


@dataclass(frozen=True)
class Truth:
    """Latents -> what each latent's image really shows, per measure (see `ground_truth`); a
    pack labels every run's latents in one call (`scene_labels`) and each run measures its
    own share (`of_labels`)."""

    generator: Generator
    content: torch.Tensor  # (attributes,) the target's value index of each, or UNNAMED
    named: torch.Tensor  # (attributes,) which the target names
    colour: int  # the object's colour the target names, or UNNAMED
    leak_measured: bool

    def __call__(self, latents: np.ndarray) -> dict[str, np.ndarray]:
        return self.of_labels(scene_labels(self.generator, latents))

    def of_labels(self, labels: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        from ..world import ATTRIBUTES

        truth = torch.stack([labels[a].cpu() for a in ATTRIBUTES], dim=1)
        measures = {"truth_match": (((truth == self.content) & self.named).sum(1) / self.named.sum()).numpy()}
        if self.leak_measured:
            measures["colour_leak"] = (labels["background"].cpu() == self.colour).double().numpy()
        return measures


def ground_truth(generator: Generator, prompt: str | Prompt) -> Truth | None:
    """For generators with a ground truth: latents -> measures of their images. `truth_match`:
    the fraction of the attributes the prompt's target names (`target_content`: the positive
    terms' and a scene image prompt's) that the image has. `colour_leak`, when
    the target names the object's colour and not that colour for the background (a penalty such
    as `-a red background` names none): 1 where the
    background has the object's colour (the thesis's colour "leaking" from the object into the
    background), else 0."""
    if not hasattr(generator, "scenes"):
        return None
    from ..world import ATTRIBUTES
    from ..world.captions import UNNAMED

    content = torch.tensor(target_content(parse(prompt) if isinstance(prompt, str) else prompt))
    named = content != UNNAMED
    if not named.any():
        return None
    colour, background = (int(content[ATTRIBUTES.index(a)]) for a in ("colour", "background"))
    return Truth(generator, content, named, colour, leak_measured=colour != UNNAMED and background != colour)


def measured_latents(gen: Generation) -> np.ndarray:
    """The latents a generation's ground truth measures: its best, then its population."""
    return np.vstack([gen.best_latent, gen.latents])


def generation_metrics(gen: Generation, truth: dict[str, np.ndarray] | None) -> dict[str, float]:
    """The generation's metrics; `truth`: the ground-truth measures of `measured_latents(gen)`."""
    metrics = {
        "best_cos_sim": gen.best_cos_sim,
        "mean_cos_sim": float(gen.cos_sim.mean()),
        "std_cos_sim": float(gen.cos_sim.std()),
        # mean pairwise distance of the population's latents per sqrt(dim): about sqrt(2) for
        # independent prior draws, 0 for a collapsed population
        "diversity": population_diversity(gen.latents),
        "n_evals": gen.n_evals,
    }
    if truth is not None:
        # each ground-truth measure of the best image, and its population mean as pop_<measure>
        for name, values in truth.items():
            metrics[name] = float(values[0])
            metrics[f"pop_{name}"] = float(values[1:].mean())
    return metrics


def front_metrics(gen: Generation, reference: np.ndarray) -> dict[str, float]:
    """With several objectives: how many points the population's non-dominated front has, and
    the hypervolume they dominate up to `reference` (in the space of the values minimised)."""
    if gen.front is None:
        return {}
    return {"front_size": float(len(gen.front)), "hypervolume": hypervolume(gen.objectives[gen.front], reference)}


@torch.inference_mode()
def best_realness(generator: Generator, realness: Realness, gen: Generation) -> dict[str, float]:
    """How real the realness model judges the run's best image (D(x), whatever the objectives)."""
    image = generator(torch.from_numpy(gen.best_latent[None]).float())
    return {"best_realness": float(realness(image)[0])}
