"""`make world`: rebuild every shapes-world model from fixed seeds.

    python -m latentevo.training.world [--quick] [--only clip classifier dcgan] [--out DIR] [--jobs N]

Each model is trained with a progress bar, its training curves and evaluation go to the MLflow
experiment `shapes-world`, and its weights (safetensors, float16) and a JSON config (architecture,
training settings, evaluation) are written to the output directory, whose sha256 manifest is
then rewritten. `--quick` trains tiny versions into a scratch directory, for tests.

With `--jobs 2` the mini-CLIP trains in one process while the classifier and then the DCGAN
train in another, each on its share of the CPU threads: small models use one core each far
better than they share two.

The DCGAN trains on `--device` (a CUDA GPU when there is one): there it follows a longer,
wider recipe than the CPU's, which fits the CPU build into an hour but leaves its objects blobs.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

import mlflow
import open_clip
import torch
from tqdm import tqdm

from ..models.clip import WORLD_CLIP, OpenClipScorer
from ..errors import WeightsError
from ..models.classifier import ShapesClassifier, shapes_classifier
from ..models.dcgan import DCGANNetG
from ..models.weights import WORLD_DIR, write_manifest
from ..tracking import open_experiment, provenance_tags
from .classifier import ClassifierTrainConfig, evaluate_classifier, train_classifier
from .clip import ClipTrainConfig, train_clip
from .clip_eval import evaluate_scorer
from .dcgan import (
    DCGANTrainConfig, device_arg, judge_every, quality_vs_renders, recipe_for, save_dcgan, train_dcgan
)
from .export import roundtrip, save_model

EXPERIMENT = "shapes-world"
MODELS = ("clip", "classifier", "dcgan")
# Models built in one process, in order: the DCGAN's quality is judged by the classifier.
GROUPS = (("clip",), ("classifier", "dcgan"))
GROUP_OF = {name: i for i, group in enumerate(GROUPS) for name in group}
QUICK_DIR = Path(".cache/world-quick")
QUICK = {
    "clip": ClipTrainConfig(image_pretrain_steps=3, steps=6, batch_size=16, warmup=2),
    "classifier": ClassifierTrainConfig(steps=6, batch_size=16),
    "dcgan": DCGANTrainConfig(steps=6, batch_size=16),
}
FULL = {"clip": ClipTrainConfig(), "classifier": ClassifierTrainConfig(), "dcgan": DCGANTrainConfig()}


def recipes(quick: bool, device: torch.device | str) -> dict:
    if quick:
        return QUICK
    return FULL | {"dcgan": recipe_for(device)}


def _bar(total: int, desc: str) -> tqdm:
    return tqdm(total=total, desc=desc, mininterval=5, position=GROUP_OF[desc])


def build_clip(cfg: ClipTrainConfig, out: Path, log, quick: bool) -> dict:
    with _bar(cfg.image_pretrain_steps + cfg.steps, "clip") as bar:
        model = roundtrip(train_clip(cfg, log, bar, evaluate=lambda m: evaluate_scorer(OpenClipScorer(m, WORLD_CLIP), n=500)))
    metrics = evaluate_scorer(OpenClipScorer(model, WORLD_CLIP), n=200 if quick else 2000)
    config = {"open_clip_model": WORLD_CLIP, "architecture": open_clip.get_model_config(WORLD_CLIP)}
    save_model(out, "clip", model, config | {"training": asdict(cfg), "evaluation": metrics})
    return metrics


def build_classifier(cfg: ClassifierTrainConfig, out: Path, log, quick: bool) -> dict:
    with _bar(cfg.steps, "classifier") as bar:
        model = roundtrip(train_classifier(cfg, log, bar))
    metrics = evaluate_classifier(model, n=200 if quick else 2000)
    config = {"architecture": {"width": cfg.width}, "training": asdict(cfg), "evaluation": metrics}
    save_model(out, "classifier", model, config)
    return metrics


def build_dcgan(
    cfg: DCGANTrainConfig, out: Path, log, quick: bool, classifier: ShapesClassifier | None, device: torch.device | str = "cpu"
) -> dict:
    def judge(step: int, net: DCGANNetG) -> None:
        log(step, quality_vs_renders(net, classifier, 1000))

    # The quality curve beside the losses: ten judgements of 1,000 samples in a full build.
    every = judge_every(cfg.steps) if classifier is not None and not quick else 0
    with _bar(cfg.steps, "dcgan") as bar:
        net = train_dcgan(cfg, log, bar, device, checkpoint=judge, checkpoint_every=every).cpu()
    return save_dcgan(net, cfg, out, classifier, 200 if quick else 2000, device)


def build(
    models: tuple[str, ...], out: Path, quick: bool, threads: int | None = None, device: torch.device | str = "cpu"
) -> dict[str, dict]:
    if threads is not None:
        torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    configs = recipes(quick, device)
    client, experiment_id = open_experiment(EXPERIMENT)
    mlflow.set_tracking_uri(client.tracking_uri)
    results = {}
    for name in models:
        cfg = configs[name]
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"{name}{'-quick' if quick else ''}"):
            device_tag = torch.device(device).type if name == "dcgan" else "cpu"
            mlflow.set_tags(
                provenance_tags() | {"torch_threads": str(torch.get_num_threads()), "model": name, "device": device_tag}
            )
            mlflow.log_params(asdict(cfg))

            def log(step: int, metrics: dict) -> None:
                mlflow.log_metrics(metrics, step=step)

            start = time.time()
            if name == "clip":
                metrics = build_clip(cfg, out, log, quick)
            elif name == "classifier":
                metrics = build_classifier(cfg, out, log, quick)
            else:
                classifier = _load_classifier(out)
                metrics = build_dcgan(cfg, out, log, quick, classifier, device)
            metrics["train_seconds"] = time.time() - start
            mlflow.log_metrics({f"eval_{k}": v for k, v in metrics.items()})
            results[name] = metrics
            print(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()), flush=True)
    write_manifest(out)
    return results


def _load_classifier(out: Path) -> ShapesClassifier | None:
    """The classifier already in `out` (built earlier in this run or before), if any."""
    try:
        write_manifest(out)
        return shapes_classifier(weights_dir=out)
    except WeightsError:
        return None


def build_parallel(
    models: tuple[str, ...], out: Path, quick: bool, jobs: int, threads: int, device: torch.device | str = "cpu"
) -> dict[str, dict]:
    """Each group of models in its own process (spawned: a forked torch is unsafe)."""
    groups = [tuple(m for m in group if m in models) for group in GROUPS]
    groups = [group for group in groups if group]
    out.mkdir(parents=True, exist_ok=True)
    # Jobs that meet a fresh store race to create its schema: create it (and the experiment) first.
    open_experiment(EXPERIMENT)
    share = max(1, threads // min(jobs, len(groups)))
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(build, group, out, quick, share, device) for group in groups]
        results = {name: metrics for future in futures for name, metrics in future.result().items()}
    # Both processes rewrote the manifest; the last word must see every final file.
    write_manifest(out)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models into .cache/world-quick, for tests")
    parser.add_argument("--only", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--out", type=Path, help=f"output directory (default {WORLD_DIR} or {QUICK_DIR} with --quick)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads in all")
    parser.add_argument("--jobs", type=int, default=1, help="processes training models side by side")
    parser.add_argument(
        "--device", default="auto", help="where the DCGAN trains, and so its recipe (auto: cuda when there is one); the others train on the CPU"
    )
    args = parser.parse_args(argv)
    device = device_arg(parser, args.device)
    out = args.out or (QUICK_DIR if args.quick else WORLD_DIR)
    models = tuple(m for m in MODELS if m in args.only)
    start = time.time()
    if args.jobs > 1:
        build_parallel(models, out, args.quick, args.jobs, args.threads, device)
    else:
        build(models, out, args.quick, args.threads, device)
    print(f"built {', '.join(models)} into {out} in {(time.time() - start) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
