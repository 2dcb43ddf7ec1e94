"""DCGAN training on shapes-world renders (Adam 2e-4, beta1 0.5, non-saturating loss).

    python -m latentevo.training.dcgan [--device cuda] [--steps N] [--out DIR] [--eval-every K] [--unconditional]

trains the DCGAN alone, without MLflow (so on a GPU machine that has only torch): weights and
JSON config into DIR, and beside them, as JSON lines, the losses of every 20th step and the
classifier's judgement of every K-th step's generator. `make world` trains it with the other
models and logs to MLflow.

Flat-coloured renders are easy to tell from a young generator's noise: the discriminator wins
within a hundred steps and the generator's gradient vanishes. Instance noise on both inputs of
the discriminator (annealed to zero over the first `noise_anneal` of the steps) and one-sided
label smoothing keep the game going."""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..models.classifier import ShapesClassifier, shapes_classifier
from ..models.dcgan import WORLD_CLASSES, DCGANNetD, DCGANNetG, init_weights
from ..devices import resolve_device
from ..errors import ConfigError
from ..gan.datasets import labelled_shapes_batch, shapes_batch
from ..models.weights import write_manifest
from .export import roundtrip, save_model
from .quality import world_quality


@dataclass
class DCGANTrainConfig:
    steps: int = 5000
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    upsample: str = "resize"
    # Attributes G is conditioned on and D projects (DCGANNetG, DCGANNetD): all five, which made
    # the difference between blobs and shapes (docs/world.md); `unconditional` drops them.
    classes: tuple[str, ...] = tuple(WORLD_CLASSES)
    temperature: float = 0.1
    seed: int = 2
    instance_noise: float = 0.15
    noise_anneal: float = 0.5
    real_label: float = 0.9
    # Decay of an exponential moving average of the generator's weights, returned instead of the
    # last iterate when > 0: it averages out the oscillation of the adversarial game.
    ema: float = 0.0


# The committed DCGAN's recipe: 4.8x the CPU recipe's steps at twice its batch and width, with
# an EMA generator: 8 min on an H100 beside a second run, about a day on one CPU core.
DCGAN_GPU = DCGANTrainConfig(steps=24000, batch_size=128, ngf=128, ndf=128, noise_anneal=1.0, ema=0.999)


def recipe_for(device: torch.device | str) -> DCGANTrainConfig:
    """The GPU recipe on CUDA, the CPU one (which fits `make world` into an hour) elsewhere."""
    return DCGAN_GPU if torch.device(device).type == "cuda" else DCGANTrainConfig()


def unconditional(cfg: DCGANTrainConfig) -> DCGANTrainConfig:
    """The recipe with neither G nor D told the classes: latent 100, noise only."""
    return replace(cfg, classes=())


def with_noise(x: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    return x + sigma * torch.randn(x.shape, generator=g, device=x.device) if sigma > 0 else x


def _update_ema(ema: DCGANNetG, net: DCGANNetG, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), net.parameters()):
            e.lerp_(p, 1 - decay)
        for e, b in zip(ema.buffers(), net.buffers()):
            e.copy_(b)


def train_dcgan(
    cfg: DCGANTrainConfig,
    log=lambda step, metrics: None,
    progress=None,
    device: torch.device | str = "cpu",
    checkpoint=None,
    checkpoint_every: int = 0,
) -> DCGANNetG:
    """The trained generator (its EMA when `cfg.ema` > 0), in eval mode on `device`.

    Scenes are drawn on the CPU from the seed; latents and noise come from the same generator
    on the CPU, or from a second one seeded alike on an accelerator. `checkpoint(step, net)` is
    called every `checkpoint_every` steps with the network that would be returned."""
    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    g_dev = g if device.type == "cpu" else torch.Generator(device).manual_seed(cfg.seed)
    classes = {name: WORLD_CLASSES[name] for name in cfg.classes}
    net_g = DCGANNetG(cfg.nz, cfg.ngf, cfg.upsample, classes, cfg.temperature)
    net_d = DCGANNetD(cfg.ndf, classes)
    net_g.apply(init_weights)
    net_d.apply(init_weights)
    net_g, net_d = net_g.to(device), net_d.to(device)
    ema = copy.deepcopy(net_g).eval() if cfg.ema > 0 else None
    opt_g = torch.optim.Adam(net_g.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    ones, zeros = torch.ones(cfg.batch_size, device=device), torch.zeros(cfg.batch_size, device=device)
    for step in range(cfg.steps):
        sigma = cfg.instance_noise * max(0.0, 1 - step / (cfg.noise_anneal * cfg.steps))

        def noisy(x: torch.Tensor) -> torch.Tensor:
            return with_noise(x, sigma, g_dev)

        real, real_labels = labelled_shapes_batch(cfg.batch_size, g, device)
        z = torch.randn(cfg.batch_size, net_g.latent_dim, generator=g_dev, device=device)
        fake, fake_labels = net_g(z), net_g.class_labels(z)
        loss_d = F.binary_cross_entropy_with_logits(
            net_d(noisy(real), real_labels), ones * cfg.real_label
        ) + F.binary_cross_entropy_with_logits(net_d(noisy(fake.detach()), fake_labels), zeros)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.binary_cross_entropy_with_logits(net_d(noisy(fake), fake_labels), ones)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if ema is not None:
            _update_ema(ema, net_g, cfg.ema)
        # Reading a loss waits for the accelerator: only every 20 steps.
        if step % 20 == 0 or step == cfg.steps - 1:
            losses = {"loss_d": loss_d.item(), "loss_g": loss_g.item()}
            log(step, losses | {"instance_noise": sigma})
            if progress is not None:
                progress.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
        if progress is not None:
            progress.update(1)
        if checkpoint is not None and checkpoint_every and (step + 1) % checkpoint_every == 0:
            result = ema if ema is not None else net_g.eval()
            checkpoint(step + 1, result)
            net_g.train()
    return (ema if ema is not None else net_g).eval()


@torch.no_grad()
def quality_vs_renders(net: DCGANNetG, classifier: ShapesClassifier, n: int, floor: bool = False) -> dict[str, float]:
    """The classifier's judgement of n samples against n fresh renders (fixed seeds), with how
    often it sees the classes a conditional generator was asked for, and with `floor` the same
    measure between two sets of renders: the best a generator can score."""
    g = torch.Generator().manual_seed(777)
    z = torch.randn(n, net.latent_dim, generator=g)
    device = next(net.parameters()).device
    samples = torch.cat([(net(chunk.to(device)) + 1) / 2 for chunk in z.split(500)]).float().cpu()
    reference = (shapes_batch(n, g) + 1) / 2
    metrics = world_quality(classifier, samples, reference, asked=net.class_labels(z))
    if floor:
        real = world_quality(classifier, (shapes_batch(n, g) + 1) / 2, reference)
        metrics |= {f"{k}_real_vs_real": v for k, v in real.items()}
    return metrics


def dcgan_config(
    net: DCGANNetG, cfg: DCGANTrainConfig, metrics: dict[str, float], device: torch.device | str, trained: int
) -> dict:
    """The JSON beside the weights: how to build the network, how it was trained (`trained`
    of `cfg.steps` steps: fewer for a generator saved mid-run) and how it was judged."""
    return {
        "architecture": {
            "nz": cfg.nz,
            "ngf": cfg.ngf,
            "upsample": cfg.upsample,
            # Pairs: the order of the class logits in z must survive JSON's sorted keys.
            "classes": list(net.classes.items()),
            "temperature": cfg.temperature,
        },
        "training": asdict(cfg) | {"device": torch.device(device).type, "trained_steps": trained},
        "evaluation": metrics,
    }


def save_dcgan(
    net: DCGANNetG,
    cfg: DCGANTrainConfig,
    out: Path,
    classifier: ShapesClassifier | None,
    n: int,
    device: torch.device | str,
) -> dict[str, float]:
    """Judge a trained DCGAN with the classifier (when there is one) on n samples, then write its
    weights and config as they will load: float16."""
    net = roundtrip(net.cpu().eval())
    metrics = quality_vs_renders(net, classifier, n, floor=True) if classifier is not None else {}
    save_model(out, "dcgan", net, dcgan_config(net, cfg, metrics, device, cfg.steps))
    return metrics


def device_arg(parser: argparse.ArgumentParser, name: str) -> torch.device:
    """The device `--device` names (`auto`: CUDA when there is one), or the parser's one-line error."""
    try:
        return resolve_device(name)
    except ConfigError as err:
        parser.error(f"--device {name}: {err}")


def judge_every(steps: int) -> int:
    """Steps between judgements of the generator: ten in a run."""
    return max(1, steps // 10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="train the shapes-world DCGAN alone, without MLflow")
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... or auto (cuda when there is one); it picks the recipe")
    parser.add_argument("--unconditional", action="store_true", help="tell neither G nor D the classes (latent: 100 noise, no class logits)")
    parser.add_argument("--steps", type=int, help="override the recipe's steps (the noise schedule scales)")
    parser.add_argument("--out", type=Path, default=Path(".cache/dcgan"), help="src/latentevo/assets/world replaces the committed DCGAN")
    parser.add_argument("--eval-every", type=int, help="judge the generator every K steps on 1,000 samples (default: ten times a run; 0: never)")
    args = parser.parse_args(argv)
    device = device_arg(parser, args.device)
    cfg = unconditional(recipe_for(device)) if args.unconditional else recipe_for(device)
    cfg = replace(cfg, steps=args.steps or cfg.steps)
    every = judge_every(cfg.steps) if args.eval_every is None else args.eval_every
    classifier = shapes_classifier()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with (
        open(args.out / "dcgan_checkpoints.jsonl", "w") as curve,
        open(args.out / "dcgan_losses.jsonl", "w") as losses,
        tqdm(total=cfg.steps, desc="dcgan", mininterval=5) as bar,
    ):

        def log(step: int, metrics: dict[str, float]) -> None:
            losses.write(json.dumps({"step": step} | metrics) + "\n")

        def checkpoint(step: int, net: DCGANNetG) -> None:
            metrics = quality_vs_renders(net, classifier, 1000)
            curve.write(json.dumps({"step": step, "minutes": (time.time() - start) / 60} | metrics) + "\n")
            curve.flush()
            bar.write(f"step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
            # A run cut short (a GPU lease running out) keeps the generator it last judged.
            save_model(args.out, "dcgan", net, dcgan_config(net, cfg, metrics, device, step))
            write_manifest(args.out)

        net = train_dcgan(cfg, log, bar, device, checkpoint=checkpoint, checkpoint_every=every)
    metrics = save_dcgan(net, cfg, args.out, classifier, 2000, device)
    write_manifest(args.out)
    print(f"dcgan into {args.out} in {(time.time() - start) / 60:.1f} min: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
