"""E-GAN vs DCGAN (seed 003) from the runs of train.py in an MLflow store: distribution quality
over training (per iteration and per second), losses, which mutation won, final samples, and
a table with the report's own numbers beside ours.

    python -m analysis egan --paths gan --out figures/egan      # the store of make egan (conf/paths/gan.yaml)
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
from .store import from_args

MODELS = {"egan": "E-GAN", "dcgan": "DCGAN"}
MUTATIONS = ["minimax", "heuristic", "least_squares"]
METRICS = ["fd_classifier", "fd_classifier_real", "train_s", "loss_d", "loss_g", "mutation_won", "fitness_best",
           *(f"{k}_{m}" for m in MUTATIONS for k in ("loss_g", "fitness", "quality", "diversity"))]
# iterations per point of the smoothed curves
WINDOW = 25
# seed 003, section 3.3: wall-clock for 50 CIFAR-10 epochs on comparable GPU instances
REPORTED_MINUTES_50_EPOCHS = {"dcgan": 40, "egan": 120}
NOT_COMPARABLE = ("not comparable: the report trains on CIFAR-10 (64 px DCGAN, 32 px E-GAN) on a GPU; "
                  "ours: shapes world, 32 px, CPU")


def load(uri: str | None):
    client, runs = finished(uri, "train.py")
    gans = [r for r in runs
            if r.data.params.get("model.name") in MODELS and r.data.params.get("dataset.name") == "shapes"]
    chosen = latest(gans, key=lambda r: (r.data.params["model.name"], int(r.data.params["seed"])))
    if {m for m, _ in chosen} != set(MODELS):
        raise LatentevoError("no FINISHED E-GAN and DCGAN runs on the shapes world in the store; "
                             "run `make egan` first")
    frames = []
    for (model, seed), run in chosen.items():
        h = history(client, run, METRICS).assign(model=MODELS[model], seed=seed,
                                                 batch=int(run.data.params["model.batch_size"]))
        frames.append(h)
    return client, chosen, pd.concat(frames, ignore_index=True)


def quality_figure(h: pd.DataFrame):
    q = h.dropna(subset=["fd_classifier"]).query("step > 0")
    q = q.assign(minutes=q["train_s"] / 60)
    style = "seed" if q["seed"].nunique() > 1 else None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    sns.lineplot(q, x="step", y="fd_classifier", hue="model", style=style, marker="o", ax=axes[0])
    sns.lineplot(q, x="minutes", y="fd_classifier", hue="model", style=style, marker="o", ax=axes[1], legend=False)
    floor = h["fd_classifier_real"].dropna()
    for ax in axes:
        if len(floor):
            ax.axhline(floor.mean(), color="grey", ls="--", lw=1, label="real vs real")
    axes[0].legend()
    axes[0].set(xlabel="iteration", ylabel="Fréchet distance, classifier features\n(lower: closer to the renders)",
                yscale="log")
    axes[1].set(xlabel="CPU time in training steps (min; evaluation excluded)")
    fig.suptitle("E-GAN vs DCGAN on the shapes world: distribution quality over training")
    return fig


def losses_figure(h: pd.DataFrame):
    smooth = h.dropna(subset=["loss_d"]).sort_values("step").copy()
    egan = smooth["model"] == "E-GAN"
    # the same quantity for both, -E[log D(G(z))]: E-GAN's heuristic child measures it (its loss is half of it)
    smooth.loc[egan, "loss_g"] = 2 * smooth.loc[egan, "loss_g_heuristic"]
    for col in ("loss_d", "loss_g"):
        smooth[col] = smooth.groupby(["model", "seed"])[col].transform(
            lambda s: s.rolling(WINDOW, min_periods=1).mean())
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"wspace": 0.3})
    sns.lineplot(smooth, x="step", y="loss_d", hue="model", ax=axes[0])
    sns.lineplot(smooth, x="step", y="loss_g", hue="model", ax=axes[1])
    axes[0].set(xlabel="iteration", ylabel=f"discriminator loss\n({WINDOW}-iteration mean)")
    axes[1].set(xlabel="iteration", ylabel=f"generator loss -E[log D(G(z))]\n({WINDOW}-iteration mean)")
    return fig


def mutations_figure(h: pd.DataFrame):
    e = h[(h["model"] == "E-GAN")].dropna(subset=["mutation_won"]).copy()
    e["window"] = (e["step"] - 1) // (WINDOW * 4) * WINDOW * 4
    e["mutation"] = e["mutation_won"].astype(int).map(dict(enumerate(MUTATIONS)))
    share = e.groupby("window")["mutation"].value_counts(normalize=True).rename("share").reset_index()
    fit = e.melt(id_vars=["step"], value_vars=[f"fitness_{m}" for m in MUTATIONS], var_name="mutation",
                 value_name="fitness")
    fit["mutation"] = fit["mutation"].str.removeprefix("fitness_")
    fit["fitness"] = fit.groupby("mutation")["fitness"].transform(lambda s: s.rolling(WINDOW, min_periods=1).mean())
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"wspace": 0.3})
    sns.barplot(share, x="window", y="share", hue="mutation", hue_order=MUTATIONS, ax=axes[0])
    axes[0].set(xlabel=f"iterations from (windows of {WINDOW * 4})", ylabel="share of iterations won")
    axes[0].tick_params(axis="x", rotation=45)
    sns.lineplot(fit, x="step", y="fitness", hue="mutation", hue_order=MUTATIONS, ax=axes[1])
    axes[1].set(xlabel="iteration", ylabel=f"child fitness F_q + γ F_d\n({WINDOW}-iteration mean)")
    fig.suptitle("E-GAN: which mutation's child survived")
    return fig


def samples_figure(client, chosen, tmp: Path):
    runs = sorted(chosen.items())
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 5.4))
    for ax, ((model, seed), run) in zip(axes, runs):
        image, name = last_image(client, run, "samples", tmp)
        ax.imshow(image)
        ax.set_title(f"{MODELS[model]} (seed {seed}), {Path(name).stem.replace('_', ' ')}")
        ax.axis("off")
    return fig


def table(chosen, h: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (model, seed), run in sorted(chosen.items()):
        m, p = run.data.metrics, run.data.params
        iters = int(p["model.iterations"])
        q = h[(h["model"] == MODELS[model]) & (h["seed"] == seed)].dropna(subset=["fd_classifier"]).query("step > 0")
        real_per_iter = int(p["model.batch_size"]) * (int(p["model.d_steps"]) if model == "egan" else 1)
        rows.append({
            "model": MODELS[model], "seed": seed, "iterations": iters, "batch": int(p["model.batch_size"]),
            "real images seen": real_per_iter * iters,
            "generator steps": iters * (len(MUTATIONS) * int(p["model.parents"]) if model == "egan" else 1),
            "fd_classifier final": m["fd_classifier"], "fd_classifier best": q["fd_classifier"].min(),
            "fd_classifier real vs real": m.get("fd_classifier_real"),
            "train CPU s": m["train_s"], "CPU s / iteration": m["train_s"] / iters,
        })
    return pd.DataFrame(rows)


def final_quality(ours: pd.DataFrame) -> str:
    """Each model's final fd_classifier: the value, or the mean and range over its seeds."""
    parts = []
    for model, runs in ours.groupby("model"):
        fd = runs["fd_classifier final"]
        spread = f" (seeds {fd.min():.0f}–{fd.max():.0f})" if len(fd) > 1 else ""
        parts.append(f"{model} final {fd.mean():.0f}{spread}")
    return "; ".join(parts) + " (fd_classifier)"


def reported(ours: pd.DataFrame) -> pd.DataFrame:
    per_iter = ours.groupby("model")["CPU s / iteration"].mean()
    ratio_ours = per_iter["E-GAN"] / per_iter["DCGAN"]
    ratio_reported = REPORTED_MINUTES_50_EPOCHS["egan"] / REPORTED_MINUTES_50_EPOCHS["dcgan"]
    return pd.DataFrame([
        {"quantity": "training time, E-GAN / DCGAN",
         "seed 003 (report)": f"{ratio_reported:.1f} (2 h vs 40 min for 50 epochs)",
         "ours": f"{ratio_ours:.2f} per iteration", "comparable": NOT_COMPARABLE},
        {"quantity": "sample quality", "seed 003 (report)": "no number (samples judged similar; DCGAN cheaper)",
         "ours": final_quality(ours),
         "comparable": "not comparable: the report gives no metric"},
    ])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_gan_arguments(parser, "figures/egan")


def main(args: argparse.Namespace) -> None:
    sns.set_theme(style="whitegrid")
    client, chosen, h = load(from_args(args).uri)
    args.out.mkdir(parents=True, exist_ok=True)
    save(quality_figure(h), args.out, "quality")
    save(losses_figure(h), args.out, "losses")
    save(mutations_figure(h), args.out, "mutations")
    with tempfile.TemporaryDirectory() as tmp:
        save(samples_figure(client, chosen, Path(tmp)), args.out, "samples")
    ours = table(chosen, h)
    ours.to_csv(args.out / "table.csv", index=False)
    n = next(iter(chosen.values())).data.params["eval_samples"]
    text = ("# E-GAN vs DCGAN (seed 003) on the shapes world\n\n"
            "fd_classifier: Fréchet distance in the shapes-world classifier's feature space (the FID formula, "
            f"not Inception FID), of {n} samples against {n} renders; lower is better. "
            "Training time: CPU seconds in training steps (one thread), evaluation excluded.\n\n"
            + stats.markdown(ours) + "\n## Beside the report's numbers\n\n" + stats.markdown(reported(ours))
            + "\nFigures: quality.png, losses.png, mutations.png, samples.png\n")
    (args.out / "index.md").write_text(text)
    print(text)
    print(f"figures and tables in {args.out}/", file=sys.stderr)

