"""Fitness throughput of the real models: images/s of generator + CLIP over whole populations.

Builds the models exactly as a pack does (the same configs, `pipeline.models.Models`) and times
the pack's own batched fitness (chunked by batch_size, halved on GPU out-of-memory) on prior
draws, for each population size; also the generator alone. A pack of k runs of pop 16 sends
16 k images through one pass: `--pops 16 160 800` measures 1, 10 and 50 seeds packed. Randomly initialised models by
default (same architecture, same cost), so it runs without weights.

    python benchmarks/real_models_speed.py                                  # BigGAN-deep-256 + ViT-B/32, pop 16/64/256
    python benchmarks/real_models_speed.py --pops 16 160 800 generator.precision=bf16 generator.channels_last=true
    python benchmarks/real_models_speed.py --pops 2 4 generator=biggan_deep_128 device=cpu
    python benchmarks/real_models_speed.py --pretrained \\
        generator.precision=fp16 clip.precision=fp16 generator.channels_last=true

Prints a table and, with --out, writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from latentevo import prompts
from latentevo.devices import resolve_device
from latentevo.pipeline.models import Models, Request

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = ["generator=biggan_deep_256", "clip=vit_b_32", "threads=null"]
RANDOM_INIT = ["generator.random_init=true", "clip.random_init=true"]


def compose_config(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides)


def seconds(call, repeats: int) -> float:
    """Median wall time of `call()` after one warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.machine()} CPU"


def measure(cfg, pops: list[int], repeats: int) -> list[dict]:
    models = Models.of(cfg)
    generator = models.generator
    print(f"device: {device_name(models.device)}, torch {torch.__version__}, threads {torch.get_num_threads()}",
          flush=True)
    targets = models.targets(prompts.of_config(cfg))

    def evaluate(latents):
        views = models.scorer.draw_views(len(latents), torch.Generator().manual_seed(0))
        return models.scores([Request(latents, targets, views)])
    rows = []
    for pop in pops:
        latents = generator.sample_latents(pop, torch.Generator().manual_seed(pop)).double().numpy()
        z = torch.from_numpy(latents).float()

        def generate_only():
            with torch.inference_mode():
                for part in z.split(cfg.batch_size):
                    generator(part)

        total = seconds(lambda: evaluate(latents), repeats)
        alone = seconds(generate_only, repeats)
        rows.append({"pop": pop, "images_per_s": pop / total, "generator_images_per_s": pop / alone,
                     "s_per_generation": total})
        print(f"pop {pop:4d}: {pop / total:8.2f} images/s generator + CLIP ({total:.3f} s per population), "
              f"{pop / alone:8.2f} images/s generator alone", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pops", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pretrained", action="store_true", help="load the real weights instead of random init")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("overrides", nargs="*", help="config overrides, as for run.py")
    args = parser.parse_args()
    overrides = DEFAULTS + ([] if args.pretrained else RANDOM_INIT) + args.overrides
    cfg = compose_config(overrides)
    print(" ".join(overrides), flush=True)
    rows = measure(cfg, args.pops, args.repeats)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {"overrides": overrides, "device": device_name(resolve_device(cfg.device)), "torch": torch.__version__,
                  "python": sys.version.split()[0],
                  "config": OmegaConf.to_container(cfg.generator, resolve=True)
                  | {"clip": OmegaConf.to_container(cfg.clip, resolve=True)},
                  "results": rows}
        args.out.write_text(json.dumps(record, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
