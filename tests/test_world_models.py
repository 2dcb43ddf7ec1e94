"""The committed shapes-world models: they load offline, are verified, and meet their numbers."""

import json
import random
import shutil

import pytest
import torch
from gan_cli import history
from mlflow import MlflowClient
from pipeline_cli import run_module
from safetensors.torch import load_file

from latentevo.errors import WeightsError
from latentevo.models.classifier import shapes_classifier
from latentevo.models.clip import shapes_clip
from latentevo.models.dcgan import dcgan_shapes
from latentevo.models.weights import WORLD_DIR, read_manifest, verified_path
from latentevo.training.classifier import evaluate_classifier
from latentevo.training.clip_eval import evaluate_scorer
from latentevo.training.data import labelled_shapes_batch, scene_batch, shapes_batch
from latentevo.training.quality import world_quality
from latentevo.world import ATTRIBUTE_VALUES, ATTRIBUTES, caption_text
from latentevo.world.captions import sample_content


@pytest.fixture(scope="module")
def clip():
    return shapes_clip()


@pytest.fixture(scope="module")
def classifier():
    return shapes_classifier()


def test_manifest_lists_every_committed_file():
    listed = read_manifest(WORLD_DIR)
    on_disk = {p.name for p in WORLD_DIR.iterdir() if p.suffix in {".safetensors", ".json"}}
    assert set(listed) == on_disk
    assert {"clip.safetensors", "classifier.safetensors", "dcgan.safetensors"} <= on_disk
    assert sum((WORLD_DIR / n).stat().st_size for n in on_disk) < 50 * 2**20


def test_mini_clip_names_shape_and_colour_of_held_out_renders(clip):
    m = evaluate_scorer(clip, n=600, seed=2024)
    assert m["zeroshot_shape"] >= 0.9
    assert m["zeroshot_colour"] >= 0.9
    # Shape x colour pairs that no training caption named together: the text tower composes them.
    assert m["zeroshot_shape_colour_heldout_pairs"] >= 0.85
    assert m["retrieval_image_to_text_r1"] >= 0.9


@pytest.mark.parametrize("changed", ["shape", "colour"])
def test_mini_clip_ranks_true_caption_above_distractors(clip, changed):
    """Captions naming shape and colour (and maybe more) against the same caption with the
    shape, or the colour, changed."""
    g, rng = torch.Generator().manual_seed(11), random.Random(11)
    batch = scene_batch(300, g, augment=False)
    content = sample_content(batch.labels, g)
    content[:, :2] = batch.labels[:, :2]
    i = ATTRIBUTES.index(changed)
    distractor = content.clone()
    n_values = len(ATTRIBUTE_VALUES[changed])
    distractor[:, i] = (content[:, i] + torch.randint(1, n_values, (len(content),), generator=g)) % n_values
    images = clip.embed_images(batch.images)
    true_score = (images * clip.embed_text([caption_text(c, rng) for c in content])).sum(1)
    false_score = (images * clip.embed_text([caption_text(c, rng) for c in distractor])).sum(1)
    assert (true_score > false_score).float().mean() >= 0.9


def test_scorer_interface(clip):
    texts = clip.embed_text(["a red circle", "a blue circle", "a red square"])
    assert torch.allclose(texts.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert clip.count_tokens("a red circle") == 5
    images = torch.rand(3, 3, 32, 32)  # any size: the scorer resizes
    assert torch.allclose(clip.cos_sim(images, texts[0]), clip.embed_images(images) @ texts[0])


def test_classifier_accuracy_on_held_out_renders(classifier):
    m = evaluate_classifier(classifier, n=600, seed=99)
    assert m["accuracy_shape"] >= 0.95
    assert m["accuracy_colour"] >= 0.95
    assert m["accuracy_shape_degraded"] >= 0.9


def test_dcgan_samples_hold_the_objects_they_are_asked_for(classifier):
    gen = dcgan_shapes()
    g = torch.Generator().manual_seed(5)
    z = gen.sample_latents(400, g)
    samples = gen(z)
    assert samples.shape == (400, 3, 32, 32)
    assert samples.min() >= 0 and samples.max() <= 1
    reference = (shapes_batch(400, g) + 1) / 2
    quality = world_quality(classifier, samples, reference, asked=gen.net.class_labels(z))
    # Baseline: each sample flattened to its mean colour (right backgrounds, no object).
    flat = world_quality(classifier, samples.mean((2, 3), keepdim=True).expand_as(samples).contiguous(), reference)
    assert quality["fd_classifier"] < 0.05 * flat["fd_classifier"]
    assert quality["confident_rate"] >= 0.4 > flat["confident_rate"]
    # Chance: 1 in 6 shapes, 1 in 8 colours (docs/world.md: 68 % and 85 % on 2,000 samples).
    assert quality["asked_shape"] >= 0.5 and quality["asked_colour"] >= 0.7


def test_asked_classes_are_scored_by_what_the_classifier_sees(classifier):
    images, labels = labelled_shapes_batch(300, torch.Generator().manual_seed(6))
    images = (images + 1) / 2
    truth = world_quality(classifier, images, images, asked=labels)
    assert all(truth[f"asked_{name}"] >= 0.9 for name in labels)
    wrong = world_quality(classifier, images, images, asked={"shape": (labels["shape"] + 1) % 6})
    assert wrong["asked_shape"] <= 0.1


def test_random_init_needs_no_weights(tmp_path):
    assert shapes_clip(random_init=True).context_length == 24
    assert dcgan_shapes(random_init=True, weights_dir=tmp_path).latent_dim == 129


@pytest.mark.parametrize("damage", ["corrupt", "missing", "unlisted"])
def test_damaged_weights_give_one_line_naming_make_world(tmp_path, damage):
    world = tmp_path / "world"
    shutil.copytree(WORLD_DIR, world)
    target = world / "classifier.safetensors"
    if damage == "corrupt":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "missing":
        target.unlink()
    else:
        manifest = world / "MANIFEST.sha256"
        manifest.write_text("".join(line + "\n" for line in manifest.read_text().splitlines()
                                    if "classifier.safetensors" not in line))
    with pytest.raises(WeightsError) as err:
        shapes_classifier(weights_dir=world)
    message = str(err.value)
    assert "make world" in message and "\n" not in message
    assert {"corrupt": "checksum", "missing": "missing", "unlisted": "not listed"}[damage] in message


@pytest.mark.process
def test_world_quick_builds_loadable_models_side_by_side_into_a_fresh_store(world_quick):
    # Two processes meeting a store that does not exist yet used to race to create its tables.
    uri, out, result = world_quick
    assert result.returncode == 0, result.stderr[-3000:]
    models = ("clip", "classifier", "dcgan")
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("shapes-world").experiment_id])
    assert sorted(run.info.run_name for run in runs) == sorted(f"{m}-quick" for m in models)
    assert {run.info.status for run in runs} == {"FINISHED"}
    # the mini-CLIP trained beside the classifier
    times = {run.info.run_name: (run.info.start_time, run.info.end_time) for run in runs}
    assert times["clip-quick"][0] < times["classifier-quick"][1]
    assert times["classifier-quick"][0] < times["clip-quick"][1]
    assert all(json.loads((out / f"{m}.json").read_text())["evaluation"] for m in models)
    assert set(read_manifest(out)) == {f"{m}.{ext}" for m in models for ext in ("json", "safetensors")}
    assert all(verified_path(name, out) for name in read_manifest(out))
    clip = shapes_clip(weights_dir=out)
    assert clip.embed_text(["a red circle"]).shape == (1, 128)
    assert shapes_classifier(weights_dir=out)(torch.rand(2, 3, 64, 64))["shape"].shape == (2, 6)
    assert dcgan_shapes(weights_dir=out)(torch.zeros(1, 129)).shape == (1, 3, 32, 32)


def world_run(uri: str, name: str):
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("shapes-world").experiment_id],
                                f"attributes.run_name = '{name}'")
    return client, run


@pytest.mark.process
def test_the_quick_dcgan_is_judged_through_its_run_and_loads_with_its_class_order(world_quick):
    uri, out, result = world_quick
    assert result.returncode == 0, result.stderr[-3000:]
    client, run = world_run(uri, "dcgan-quick")
    # judged at the first and the last iteration, and of the saved weights at the end
    assert sorted(history(client, run.info.run_id, "fd_classifier")) == [1, 6]
    losses = history(client, run.info.run_id, "loss_d")
    assert sorted(losses) == [6] and all(v > 0 for v in losses.values())
    assert history(client, run.info.run_id, "instance_noise")[6] == 0.0  # annealed over the first half
    config = json.loads((out / "dcgan.json").read_text())
    evaluation = config["evaluation"]
    assert evaluation["fd_classifier"] > evaluation["fd_classifier_real"] > 0
    assert run.data.metrics["fd_classifier_n200"] == evaluation["fd_classifier"]
    assert 0 <= evaluation["confident_rate"] <= 1 and 0 <= evaluation["asked_shape"] <= 1
    assert config["training"]["model"]["iterations"] == 6 and config["training"]["device"] == "cpu"
    # JSON sorts keys: the class logits must keep the order they were trained in
    assert [name for name, _ in config["architecture"]["classes"]] == list(ATTRIBUTES)
    loaded = dcgan_shapes(weights_dir=out)
    assert loaded.latent_dim == 129 and list(loaded.net.classes) == list(ATTRIBUTES)
    # float16 on disk, as the committed models
    assert all(t.dtype == torch.float16 for t in load_file(out / "dcgan.safetensors").values() if t.is_floating_point())
    assert loaded(torch.zeros(2, 129)).shape == (2, 3, 32, 32)


GALLERY = "latentevo.training.gallery"


def test_the_docs_gallery_draws_its_three_pictures(tmp_path):
    result = run_module(GALLERY, ["--out", str(tmp_path / "docs")])
    assert result.returncode == 0, result.stderr[-2000:]
    pictures = ("world_renders.png", "world_generators.png", "world_dcgan_shapes.png")
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == sorted(pictures)
    assert all((tmp_path / "docs" / name).stat().st_size > 1000 for name in pictures)


@pytest.mark.parametrize("bad, message", [
    ("argument", f"error: python -m {GALLERY}: unrecognized arguments: --bogus (see python -m {GALLERY} --help)"),
    ("out", "error: cannot write {out} (File exists); choose a writable directory"),
])
def test_the_docs_gallery_refuses_bad_input_with_one_line(tmp_path, bad, message):
    out = tmp_path / "docs"
    out.write_text("in the way")
    result = run_module(GALLERY, ["--bogus"] if bad == "argument" else ["--out", str(out)])
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message.format(out=out)), result.stderr[-2000:]
