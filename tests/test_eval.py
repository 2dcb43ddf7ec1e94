"""Chapter-5 evaluation: the evaluation loop end to end on the shapes world (quick settings), its
tables against each other and against the renderer's ground truth, the real classifiers in
random-init mode, and the offline errors of missing weights and data."""

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from pipeline_cli import MECHANICS_CLIP, error_lines, run_cli, run_module, runs_of

from analysis import eval as E
from analysis import make_eval
from analysis.store import Store
from analysis.sweeps import job_specs, missing_jobs
from latentevo.errors import ConfigError, WeightsError
from latentevo.evaluation import train_cifar10
from latentevo.evaluation.evaluate import evaluation_prompt
from latentevo.models.classifier import (
    CIFAR10_LABELS,
    RESNET50_FILE,
    Cifar10CNN,
    Cifar10Net,
    ImageNetResNet50,
    ShapesAttributeClassifier,
)
from latentevo.models.shapes import ShapesGenerator
from latentevo.models.weights import save_weights
from latentevo.pipeline.spec import run_params
from latentevo.world import SHAPES

CLASSES = ["circle", "star"]
SEEDS, POP = 2, 8
CIFAR10_TRAINING = "latentevo.evaluation.train_cifar10"
QUICK = [f"evaluation.target={','.join(CLASSES)}", "algo=ga", f"seed=range({SEEDS})", f"pop_size={POP}",
         "generations=3", "log_every=3", "hydra.launcher.workers=1", *MECHANICS_CLIP]


@pytest.fixture(scope="module")
def built(tmp_path_factory, new_store):
    """eval_shapes at quick settings run by `make_eval` into a fresh store, and its outputs."""
    root = tmp_path_factory.mktemp("eval")
    uri = new_store(root)
    store = Store([f"paths.store='{uri}'", f"paths.sweeps={root / 'sweeps'}"], uri, root / "cache")
    skipped = make_eval.build(root / "out", ["eval_shapes"], {"eval_shapes": QUICK}, run=True, store=store)
    missing_after = missing_jobs("eval_shapes", [*QUICK, *store.overrides])
    assert skipped == []
    return uri, root / "out", missing_after


def test_eval_run_logs_predictions_in_population_order_with_the_prompt_from_the_template(built):
    uri, _, missing_after = built
    client, runs = runs_of(uri, "eval_shapes")
    assert missing_after == [] and len(runs) == len(CLASSES) * SEEDS
    for run in runs:
        target = run.data.params["evaluation.target"]
        assert run.info.status == "FINISHED" and run.data.params["prompt"] == f"a photo of a {target}"
        population = np.load(client.download_artifacts(run.info.run_id, "population.npz"))
        table = pd.read_csv(client.download_artifacts(run.info.run_id, E.PREDICTIONS))
        assert len(table) == run.data.metrics["eval_images"] == len(population["latents"])
        np.testing.assert_allclose(table["cos_sim"], population["cos_sim"], rtol=1e-6)
        assert run.data.metrics["eval_positive"] == table["correct"].sum()


def test_table_counts_add_up_to_the_images_and_the_confusion_matrix_matches(built):
    uri, out, _ = built
    table = pd.read_csv(out / "eval_shapes_ga_accuracy.csv").set_index("class")
    matrix = pd.read_csv(out / "eval_shapes_ga_confusion.csv", index_col=0)
    assert list(table.index) == [*CLASSES, "TOTAL"]
    assert (table.loc[CLASSES, "images"] == SEEDS * POP).all()
    assert table.loc["TOTAL", "images"] == len(CLASSES) * SEEDS * POP
    assert ((table["positive"] + table["negative"]) == table["images"]).all()
    assert (table.loc["TOTAL", ["images", "positive", "truth_positive"]]
            == table.loc[CLASSES, ["images", "positive", "truth_positive"]].sum()).all()
    np.testing.assert_allclose(table["accuracy_pct"], 100 * table["positive"] / table["images"], atol=0.01)
    for cls in CLASSES:
        assert matrix.loc[cls].sum() == table.loc[cls, "images"]
        assert matrix.loc[cls, cls] == table.loc[cls, "positive"]
    assert "not comparable" in (out / "eval_shapes_ga_accuracy.md").read_text()
    for figure in ("confusion", "confused_with", "samples", "classifier_vs_truth"):
        assert (out / f"eval_shapes_ga_{figure}.png").stat().st_size > 5000


def test_ground_truth_accuracy_is_the_renderers(built):
    """Recomputed from each run's logged final latents through the shapes renderer's scenes."""
    uri, out, _ = built
    client, runs = runs_of(uri, "eval_shapes")
    generator = ShapesGenerator()
    truth_positive = dict.fromkeys(CLASSES, 0)
    classifier = ShapesAttributeClassifier("shape")
    errors = 0
    for run in runs:
        target = run.data.params["evaluation.target"]
        latents = torch.from_numpy(
            np.load(client.download_artifacts(run.info.run_id, "population.npz"))["latents"]
        ).float()
        shapes = generator.scenes(latents).labels()["shape"]
        truth_positive[target] += int((shapes == SHAPES.index(target)).sum())
        predicted = classifier.probabilities(generator(latents)).argmax(1)
        errors += int((predicted != shapes).sum())
    table = pd.read_csv(out / "eval_shapes_ga_accuracy.csv").set_index("class")
    assert table.loc[CLASSES, "truth_positive"].to_dict() == truth_positive
    n = table.loc["TOTAL", "images"]
    assert table.loc["TOTAL", "classifier_error_pct"] == pytest.approx(100 * errors / n, abs=0.01)


# --- tables on synthetic predictions -----------------------------------------------------------


def synthetic(n_runs: int = 6, per_run: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    classes, labels = ["a", "b", "c"], ["a", "b", "c", "x", "y"]
    rows = []
    for run in range(n_runs):
        target = classes[run % 3]
        for image in range(per_run):
            predicted = target if rng.random() < 0.5 else labels[rng.integers(len(labels))]
            truth = target if rng.random() < 0.7 else "b"
            rows.append({"run_id": f"r{run}", "algorithm": "ga" if run % 2 else "de", "seed": run, "target": target,
                         "image": image, "predicted": predicted, "correct": predicted == target, "truth": truth,
                         "truth_correct": truth == target, "classifier_right": predicted == truth})
    return pd.DataFrame(rows)


def test_confusion_rows_are_the_class_table_with_other_classes_pooled():
    p = synthetic()
    table = E.class_table(p, ["a", "b", "c"]).set_index("class")
    matrix = E.confusion(p, ["a", "b", "c"])
    assert list(matrix.columns) == ["a", "b", "c", "other"]
    assert (matrix.sum(axis=1) == table.loc[["a", "b", "c"], "images"]).all()
    assert [matrix.loc[c, c] for c in "abc"] == list(table.loc[["a", "b", "c"], "positive"])
    assert matrix["other"].sum() == p["predicted"].isin(["x", "y"]).sum()
    wrong = E.confused_with(p, top=10)
    assert (wrong.groupby("target")["images"].sum() == table.loc[["a", "b", "c"], "negative"]).all()


def test_algorithm_accuracy_is_the_mean_over_runs_inside_its_interval():
    p = synthetic(n_runs=12)
    table = E.algorithm_table(p).set_index("algorithm")
    per_run = p.groupby(["algorithm", "run_id"])["correct"].mean() * 100
    for algo in ("ga", "de"):
        assert table.loc[algo, "accuracy_pct"] == pytest.approx(per_run[algo].mean(), abs=0.01)
        assert (table.loc[algo, "accuracy_pct_ci_low"] <= table.loc[algo, "accuracy_pct"]
                <= table.loc[algo, "accuracy_pct_ci_high"])
        assert table.loc[algo, "accuracy_pct_ci_low"] < table.loc[algo, "accuracy_pct_ci_high"]
        assert table.loc[algo, "runs"] == 6


def test_thesis_numbers_only_beside_the_thesis_configuration():
    thesis = pd.read_csv(E.THESIS_TABLES).query("dataset == 'imagenet' and `class` != 'TOTAL'")
    runs = pd.DataFrame([{"evaluation": "imagenet10", "generator": "biggan_deep_256", "algorithm": "ga", "pop_size": 64,
                          "template": "a photo of a {class}", "target": cls, "seed": seed}
                         for cls in thesis["class"] for seed in range(8)])
    dataset, reasons = E.thesis_comparison(runs, list(thesis["class"]))
    assert (dataset, reasons) == ("imagenet", [])
    ours = pd.DataFrame({"class": list(thesis["class"]) + ["TOTAL"], "accuracy_pct": 0.0})
    merged = E.with_thesis(ours, dataset)
    assert (merged["thesis_accuracy_pct"].tolist()
            == pd.read_csv(E.THESIS_TABLES).query("dataset == 'imagenet'")["accuracy_pct"].tolist())
    dataset, reasons = E.thesis_comparison(runs.assign(pop_size=16), list(thesis["class"]))
    assert dataset is None and reasons == ["pop_size 16 (thesis: 64)"]


# --- classifiers -------------------------------------------------------------------------------


def test_real_classifiers_random_init_give_probabilities_over_their_classes():
    images = torch.rand(2, 3, 256, 256)
    resnet = ImageNetResNet50(random_init=True)
    p = resnet.probabilities(images)
    assert p.shape == (2, 1000) and torch.allclose(p.sum(1), torch.ones(2), atol=1e-5)
    assert {"banana", "cash machine", "Kerry blue terrier", "pirate"} <= set(resnet.labels)
    cifar = Cifar10CNN(random_init=True)
    q = cifar.probabilities(images[:, :, :64, :64])
    assert q.shape == (2, 10) and cifar.labels == CIFAR10_LABELS and torch.allclose(q.sum(1), torch.ones(2), atol=1e-5)


def test_cifar10_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    net = Cifar10Net().eval()
    save_weights(tmp_path / "cifar10-cnn.safetensors", net.state_dict())
    images = torch.rand(3, 3, 32, 32)
    loaded = Cifar10CNN(weights=str(tmp_path))
    torch.testing.assert_close(loaded.probabilities(images), net(images).softmax(-1))


def test_resnet50_reads_torchvisions_checkpoint_from_the_weights_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTEVO_OFFLINE", "1")
    source = ImageNetResNet50(random_init=True)
    torch.save(source.model.state_dict(), tmp_path / RESNET50_FILE)
    loaded = ImageNetResNet50(weights=str(tmp_path))
    images = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(loaded.probabilities(images), source.probabilities(images))


def test_missing_weights_offline_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTEVO_OFFLINE", "1")
    with pytest.raises(WeightsError, match="ResNet-50") as resnet:
        ImageNetResNet50(weights=str(tmp_path))
    with pytest.raises(WeightsError, match="make cifar10-classifier") as cifar:
        Cifar10CNN(weights=str(tmp_path))
    for err in (resnet, cifar):
        assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)


def test_cifar10_training_without_the_data_offline_stops_with_one_line(tmp_path):
    result = run_module(CIFAR10_TRAINING, ["--data", str(tmp_path), "--weights", str(tmp_path)],
                        env={"LATENTEVO_OFFLINE": "1"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: CIFAR-10 is not in") and not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, message", [
    (["--epochs", "many"], "argument --epochs: invalid int value: 'many'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_cifar10_training_refuses_a_bad_command_line_with_one_line(args, message):
    result = run_module(CIFAR10_TRAINING, args)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: python -m {CIFAR10_TRAINING}: {message} (see python -m {CIFAR10_TRAINING} --help)"]


def test_cifar10_training_learns_a_separable_task():
    """Two classes told apart by colour: the training loop must learn them."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(128) % 2
    images = torch.rand(128, 3, 32, 32, generator=g) * 0.5
    images[:, 0] += 0.5 * labels[:, None, None]  # class 1: more red
    data = torch.utils.data.TensorDataset(images, labels)
    _, accuracy = train_cifar10.train(data, data, epochs=3, batch_size=32, device=torch.device("cpu"))
    assert accuracy > 0.9


# --- bad input ---------------------------------------------------------------------------------


def test_evaluation_prompt_is_the_template_with_the_class_and_needs_one():
    cfg = OmegaConf.create({"prompt": "a red circle", "evaluation": {
        "classes": ["circle", "star"], "target": "star", "template": "a photo of a {class}", "truth": "shape"}})
    evaluation_prompt(cfg)
    assert cfg.prompt == "a photo of a star"
    for target, message in (("???", "evaluation.target is not set"), (None, "evaluation.target is not set"),
                            ("hexagon", "not one of evaluation.classes")):
        cfg.evaluation.target = target
        with pytest.raises(ConfigError, match=message):
            evaluation_prompt(cfg)
    cfg.evaluation.target, cfg.evaluation.template = "star", "a photo"
    with pytest.raises(ConfigError, match="must contain"):
        evaluation_prompt(cfg)


@pytest.mark.parametrize("args, message", [
    (["evaluation=shapes_shape", "evaluation.target=hexagon"], "evaluation.target='hexagon' is not one of"),
    (["evaluation=cifar10", "evaluation.target=cat", "paths.weights=/nonexistent"], "no weights for CIFAR-10 CNN"),
])
def test_bad_evaluation_config_is_one_line_and_leaves_no_run(store, tmp_path, args, message):
    result = run_cli([*args, "experiment_name=eval_bad", "generations=2", "pop_size=8", *MECHANICS_CLIP],
                     store, tmp_path, env={"LATENTEVO_OFFLINE": "1"})
    assert result.returncode == 1
    assert len(error_lines(result.stderr)) == 1 and message in error_lines(result.stderr)[0]
    _, runs = runs_of(store, "eval_bad")
    assert not [r for r in runs if r.info.status == "RUNNING"]


def recorded_params(experiment: str):
    """The experiment's config, and its jobs' params as run.py would log them, named as the
    evaluation tables name them."""
    specs = [spec for _, spec in job_specs(experiment)]
    assert None not in specs  # run.py takes every job
    params = [{k: str(v) for k, v in run_params(spec.cfg, spec.choices).items()} for spec in specs]
    runs = pd.DataFrame([{column: p[param] for param, column in E.COLUMNS.items()} for p in params])
    return specs[0].cfg, runs


@pytest.mark.parametrize("experiment, dataset", [("eval_imagenet", "imagenet"), ("eval_cifar10", "cifar10")])
def test_real_model_sweeps_are_the_thesis_configuration(experiment, dataset):
    """Their 80 jobs, as the store would record them, are what the thesis's table is compared with."""
    cfg, runs = recorded_params(experiment)
    assert len(runs) == 80 and runs["pop_size"].eq("64").all()
    runs["pop_size"] = runs["pop_size"].astype(int)
    assert E.thesis_comparison(runs, list(cfg.evaluation.classes)) == (dataset, [])
    assert not E.thesis_comparison(runs.assign(algorithm="de"), list(cfg.evaluation.classes))[0]


@pytest.mark.parametrize("experiment, jobs", [("eval_shapes", 192), ("eval_colours", 64), ("eval_dcgan", 48)])
def test_shapes_world_sweeps_are_population_64_times_8_repetitions(experiment, jobs):
    cfg, runs = recorded_params(experiment)
    assert len(runs) == jobs and runs["pop_size"].eq("64").all()
    assert runs.groupby(["algorithm", "target"])["seed"].nunique().eq(8).all()
    assert set(runs["target"]) == set(cfg.evaluation.classes)
