"""FaceGen (seed 004) on the shapes world, from the runs of train.py and pixel_ga.py in an
MLflow store: the pixel-space GA (realness CNN and CLIP fitness) against the VAE and the DCGAN,
with the report's FIDs beside our numbers.

    python -m analysis facegen --paths gan --out figures/facegen      # the store of make facegen (conf/paths/gan.yaml)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from latentevo.errors import LatentevoError

from . import stats
from .gan_runs import add_gan_arguments, finished, history, last_image, latest, save
from .load import artifact_file
from .store import from_args

# seed 004, table 3 and section 5: FID (Inception, pytorch-fid) at 128 px
REPORTED_FID = {"VAE": {"CelebA": 314.47, "UTKFace": 290.08}, "DCGAN": {"CelebA": 140.99, "UTKFace": 163.17}}
GA_NOT_MEASURED = "not measured (report: 'obvious bad results')"
NOT_COMPARABLE = ("not comparable: Inception FID on 128 px faces vs our Fréchet distance in the shapes-world "
                  "classifier's features on 32 px shapes")


def load(uri: str | None):
    client, trained = finished(uri, "train.py")
    _, searched = finished(uri, "pixel_ga.py")
    shapes = [r for r in trained if r.data.params.get("dataset.name") == "shapes"]
    models = latest([r for r in shapes if r.data.params["model.name"] in ("vae", "dcgan", "egan")],
                    key=lambda r: (r.data.params["model.name"], int(r.data.params["seed"])))
    gas = latest(searched, key=lambda r: (r.data.params["fitness"], int(r.data.params["seed"])))
    trained_models = {name for name, _ in models}
    if "vae" not in trained_models or "dcgan" not in trained_models or not gas:
        raise LatentevoError("the store lacks FINISHED VAE, DCGAN or pixel-GA runs on the shapes world; "
                             "run `make facegen` first")
    return client, models, gas


def ga_name(fitness: str, run) -> str:
    return "GA, realness CNN" if fitness == "realness" else f"GA, CLIP \"{run.data.params['prompt']}\""


def table(client, models, gas, n: int) -> pd.DataFrame:
    rows = []
    for (fitness, seed), run in sorted(gas.items()):
        m = run.data.metrics
        best = history(client, run, ["best_fitness"]).sort_values("step")["best_fitness"]
        reported = GA_NOT_MEASURED if fitness == "realness" else "not in the report"
        rows.append({"model": ga_name(fitness, run), "seed": seed, "fd_classifier n=100": m.get("fd_classifier_n100"),
                     f"fd_classifier n={n}": None, "best fitness, generation 0": best.iloc[0],
                     "best fitness, last": best.iloc[-1], "FaceGen FID CelebA": reported,
                     "FaceGen FID UTKFace": reported})
    names = {"vae": "VAE", "dcgan": "DCGAN", "egan": "E-GAN"}
    for (key, seed), run in sorted(models.items()):
        m, name = run.data.metrics, names[key]
        reported = REPORTED_FID.get(name, {})
        rows.append({"model": name, "seed": seed, "fd_classifier n=100": m.get("fd_classifier_n100"),
                     f"fd_classifier n={n}": m.get("fd_classifier"),
                     "FaceGen FID CelebA": reported.get("CelebA", "not in the report"),
                     "FaceGen FID UTKFace": reported.get("UTKFace", "not in the report")})
    # The floor depends on the seed's reference renders: one row per seed.
    floors: dict[int, dict] = {}
    for (_, seed), run in sorted(models.items()):
        floors.setdefault(seed, run.data.metrics)
    for seed, m in sorted(floors.items()):
        rows.append({"model": "real renders (floor)", "seed": seed,
                     "fd_classifier n=100": m.get("fd_classifier_real_n100"),
                     f"fd_classifier n={n}": m.get("fd_classifier_real"),
                     "FaceGen FID CelebA": "", "FaceGen FID UTKFace": ""})
    return pd.DataFrame(rows)


def fitness_figure(client, gas):
    frames = []
    for (fitness, seed), run in gas.items():
        h = history(client, run, ["best_fitness", "mean_fitness"]).melt(id_vars="step", var_name="population",
                                                                        value_name="value")
        frames.append(h.assign(fitness=ga_name(fitness, run), seed=seed))
    data = pd.concat(frames, ignore_index=True)
    grid = sns.relplot(data, x="step", y="value", hue="population", style="seed", col="fitness", kind="line",
                       facet_kws={"sharey": False}, height=3.6, aspect=1.3)
    grid.set_axis_labels("generation", "fitness (maximised)")
    grid.set_titles("{col_name}")
    grid.figure.suptitle("FaceGen's pixel-space GA (μ = 100, q = 20): fitness over generations", y=1.04)
    return grid.figure


def images_figure(client, models, gas, tmp: Path):
    panels = []
    for (fitness, seed), run in sorted(gas.items()):
        names = sorted(a.path for a in client.list_artifacts(run.info.run_id, "population"))
        for name in (names[0], names[-1]):
            panels.append((f"{ga_name(fitness, run)}\n{Path(name).stem.replace('_', ' ')}, best first",
                           plt.imread(artifact_file(client, run.info.run_id, name, tmp))))
    for key in ("vae", "dcgan"):
        seed = min(s for k, s in models if k == key)
        image, name = last_image(client, models[key, seed], "samples", tmp)
        panels.append((f"{key.upper()} samples, {Path(name).stem.replace('_', ' ')}", image))
    cols = (len(panels) + 1) // 2
    fig, axes = plt.subplots(2, cols, figsize=(5.5 * cols, 9))
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (title, image) in zip(axes.flat, panels):
        ax.imshow(image)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    return fig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_gan_arguments(parser, "figures/facegen")


def main(args: argparse.Namespace) -> None:
    sns.set_theme(style="whitegrid")
    client, models, gas = load(from_args(args).uri)
    args.out.mkdir(parents=True, exist_ok=True)
    save(fitness_figure(client, gas), args.out, "ga_fitness")
    with tempfile.TemporaryDirectory() as tmp:
        save(images_figure(client, models, gas, Path(tmp)), args.out, "images")
    n = int(next(run for (key, _), run in models.items() if key == "dcgan").data.params["eval_samples"])
    rows = table(client, models, gas, n)
    rows.to_csv(args.out / "table.csv", index=False)
    text = ("# FaceGen (seed 004) on the shapes world: pixel GA vs VAE vs DCGAN\n\n"
            "fd_classifier: Fréchet distance in the shapes-world classifier's feature space (the FID formula, not "
            f"Inception FID) against {n} renders; n=100 compares every model at the GA's population size (the "
            "estimate is biased upwards at small n: compare within a column only). The report's FIDs: "
            f"{NOT_COMPARABLE}.\n\n" + stats.markdown(rows) + "\nFigures: ga_fitness.png, images.png\n")
    (args.out / "index.md").write_text(text)
    print(text)
    print(f"figures and tables in {args.out}/", file=sys.stderr)

