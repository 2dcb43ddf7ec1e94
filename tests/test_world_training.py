"""Training code of the world models, on tiny budgets (the real builds are `make world`)."""

import json
import random
from dataclasses import replace

import pytest
import torch

from latentevo.models.dcgan import DCGANNetD, DCGANNetG, init_weights
from latentevo.training.clip import ClipTrainConfig, caption_batch, train_clip, without_pairs
from latentevo.training.data import HELD_OUT_PAIRS, degrade, scene_batch
from latentevo.models.dcgan import dcgan_shapes
from latentevo.training.dcgan import DCGAN_GPU, DCGANTrainConfig, main as train_dcgan_main, save_dcgan, train_dcgan, unconditional
from latentevo.models.weights import write_manifest
from latentevo.training.quality import frechet_distance
from latentevo.models.classifier import shapes_classifier
from latentevo.training.world import build_dcgan, recipes
from latentevo.world import parse_prompt


def test_evaluating_during_training_leaves_the_model_trainable():
    seen = []

    def evaluate(model):
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return {}

    cfg = ClipTrainConfig(image_pretrain_steps=1, steps=4, batch_size=8, warmup=1)
    model = train_clip(cfg, evaluate=evaluate, eval_every=1)
    assert all(p.requires_grad for p in model.parameters())
    # Parameters keep changing after the first evaluation.
    first, last = seen[0], model.state_dict()
    assert any(not torch.equal(first[k], last[k]) for k in first if first[k].is_floating_point())


def test_no_training_caption_names_a_held_out_pair():
    g = torch.Generator().manual_seed(0)
    batch = scene_batch(256, g)
    pairs = set(zip(batch.labels[:, 0].tolist(), batch.labels[:, 1].tolist()))
    assert HELD_OUT_PAIRS <= pairs  # the pairs' images are rendered, never named
    content, texts = caption_batch(batch.labels, g, random.Random(0))
    named = {(s, c) for s, c in content[:, :2].tolist() if s >= 0 and c >= 0}
    assert not named & HELD_OUT_PAIRS
    assert all(tuple(parse_prompt(t)[:2]) not in HELD_OUT_PAIRS for t in texts)
    held = torch.tensor([[*sorted(HELD_OUT_PAIRS)[0], -1, -1, -1]]).repeat(200, 1)
    kept = without_pairs(held, HELD_OUT_PAIRS, g)[:, :2]
    assert ((kept == -1).sum(1) == 1).all()
    assert 0.3 < (kept[:, 0] == -1).float().mean() < 0.7


def test_degrade_changes_a_fraction_and_stays_in_range():
    images = scene_batch(64, torch.Generator().manual_seed(1), augment=False).images
    out = degrade(images, torch.Generator().manual_seed(2))
    changed = (out - images).abs().flatten(1).max(1).values > 1e-6
    assert 0.2 < changed.float().mean() < 0.8
    assert out.min() >= 0 and out.max() <= 1


def test_frechet_distance_is_zero_for_identical_sets_and_grows_with_shift():
    rng = torch.Generator().manual_seed(0)
    a = torch.randn(500, 8, generator=rng).numpy()
    assert abs(frechet_distance(a, a)) < 1e-6
    assert frechet_distance(a, a + 1.0) > frechet_distance(a, a + 0.1) > 0


def test_dcgan_upsampling_choices_keep_the_image_shape():
    z = torch.randn(3, 100)
    for upsample in ("transposed", "resize"):
        out = DCGANNetG(100, 8, upsample)(z)
        assert out.shape == (3, 3, 32, 32) and out.abs().max() <= 1
    with pytest.raises(ValueError, match="upsample"):
        DCGANNetG(100, 8, "bilinear")


def test_dcgan_training_returns_the_ema_and_checkpoints_on_schedule():
    cfg = DCGANTrainConfig(steps=6, batch_size=8, ngf=8, ndf=8, ema=0.5)
    seen = []
    net = train_dcgan(cfg, checkpoint=lambda step, g: seen.append((step, g)), checkpoint_every=2)
    assert [s for s, _ in seen] == [2, 4, 6] and all(g is net for _, g in seen)
    assert not net.training
    # Same seed without the average: the last iterate, which the average lags behind.
    raw = train_dcgan(replace(cfg, ema=0.0))
    z = torch.randn(4, 129)
    assert not torch.allclose(net(z), raw(z))
    # Judging the raw generator mid-run (eval mode, no gradients) leaves its training unchanged.
    judged = train_dcgan(replace(cfg, ema=0.0), checkpoint=lambda step, g: g(z), checkpoint_every=1)
    assert torch.equal(judged(z), raw(z))


def test_the_conditional_generator_reads_one_class_per_attribute_from_z():
    net = DCGANNetG(100, 8, "resize", {"shape": 6, "colour": 8}).eval()
    assert net.latent_dim == 114
    z = torch.randn(5, 114)
    labels = net.class_labels(z)
    assert torch.equal(labels["shape"], z[:, 100:106].argmax(1)) and torch.equal(labels["colour"], z[:, 106:].argmax(1))
    # Only the winning logits matter once the softmax is saturated: raising a loser a little
    # leaves the image as it is, making it the winner changes it.
    z = torch.zeros(1, 114)
    z[0, 100], z[0, 106] = 3.0, 3.0
    nudged, swapped = z.clone(), z.clone()
    nudged[0, 101] = 1.0
    swapped[0, 101] = 6.0
    assert torch.allclose(net(nudged), net(z), atol=1e-5)
    assert not torch.allclose(net(swapped), net(z), atol=1e-3)
    assert net.class_labels(swapped)["shape"].item() == 1
    # Asking for a colour rewrites that attribute's logits, leaving the rest and the input as they were.
    before = swapped.clone()
    asked = net.asking(swapped, "colour", 5)
    assert net.class_labels(asked)["colour"].item() == 5 and net.class_labels(asked)["shape"].item() == 1
    assert torch.equal(asked[:, :106], swapped[:, :106]) and torch.equal(swapped, before)


def test_the_dcgan_recipe_follows_the_device():
    assert recipes(False, "cpu")["dcgan"] == DCGANTrainConfig()
    assert recipes(False, "cuda")["dcgan"] == DCGAN_GPU
    assert DCGAN_GPU.steps > DCGANTrainConfig().steps
    assert DCGAN_GPU.classes == DCGANTrainConfig().classes == ("shape", "colour", "size", "position", "background")
    assert unconditional(DCGAN_GPU).classes == ()
    assert recipes(True, "cuda") == recipes(True, "cpu")


def test_a_conditional_dcgan_loads_back_with_its_class_order(tmp_path):
    # JSON sorts keys: the class logits must keep the order they were trained in.
    cfg = DCGANTrainConfig(steps=2, batch_size=8, ngf=8, ndf=8)
    assert cfg.classes == ("shape", "colour", "size", "position", "background")
    net = train_dcgan(cfg)
    save_dcgan(net, cfg, tmp_path, None, 0, "cpu")
    write_manifest(tmp_path)
    loaded = dcgan_shapes(weights_dir=tmp_path)
    assert loaded.latent_dim == 129 and list(loaded.net.classes) == list(cfg.classes)
    z = torch.randn(6, 129, generator=torch.Generator().manual_seed(1))
    assert torch.allclose((net(z) + 1) / 2, loaded(z), atol=1e-2)


def test_the_projection_discriminator_judges_an_image_against_its_labels():
    torch.manual_seed(0)
    net = DCGANNetD(8, {"shape": 6})
    net.apply(init_weights)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    circle, star = {"shape": torch.zeros(3, dtype=torch.long)}, {"shape": torch.full((3,), 3)}
    assert not torch.allclose(net(x, circle), net(x, star))
    plain = DCGANNetD(8)
    assert torch.equal(plain(x), plain(x, circle))


def test_dcgan_trains_alone_into_a_loadable_directory(tmp_path):
    train_dcgan_main(["--device", "cpu", "--steps", "4", "--eval-every", "2", "--out", str(tmp_path)])
    curve = [json.loads(line) for line in (tmp_path / "dcgan_checkpoints.jsonl").read_text().splitlines()]
    assert [c["step"] for c in curve] == [2, 4]
    assert all(c["frechet_classifier"] > 0 and 0 <= c["confident_rate"] <= 1 for c in curve)
    losses = [json.loads(line) for line in (tmp_path / "dcgan_losses.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in losses] == [0, 3]
    assert all(entry["loss_d"] > 0 and entry["loss_g"] > 0 for entry in losses)
    config = json.loads((tmp_path / "dcgan.json").read_text())
    assert config["training"]["steps"] == config["training"]["trained_steps"] == 4
    assert config["training"]["device"] == "cpu"
    assert config["evaluation"]["frechet_classifier_real_vs_real"] < config["evaluation"]["frechet_classifier"]
    assert 0 <= config["evaluation"]["asked_shape"] <= 1
    assert dcgan_shapes(weights_dir=tmp_path)(torch.zeros(2, 129)).shape == (2, 3, 32, 32)


def test_a_run_cut_short_keeps_the_generator_it_last_judged(tmp_path, monkeypatch):
    import latentevo.training.dcgan as dcgan

    judged, judge = [], dcgan.quality_vs_renders

    def judge_then_cut(net, classifier, n, floor=False):
        judged.append(n)
        if len(judged) == 2:  # the lease runs out during the second judgement
            raise KeyboardInterrupt
        return judge(net, classifier, n, floor)

    monkeypatch.setattr(dcgan, "quality_vs_renders", judge_then_cut)
    with pytest.raises(KeyboardInterrupt):
        train_dcgan_main(["--device", "cpu", "--steps", "6", "--eval-every", "2", "--out", str(tmp_path), "--unconditional"])
    config = json.loads((tmp_path / "dcgan.json").read_text())
    assert config["training"]["trained_steps"] == 2 and config["training"]["steps"] == 6
    assert config["training"]["classes"] == [] == config["architecture"]["classes"]
    assert config["evaluation"]["frechet_classifier"] > 0
    assert dcgan_shapes(weights_dir=tmp_path)(torch.zeros(2, 100)).shape == (2, 3, 32, 32)


@pytest.mark.parametrize("device", ["tpu", "cuda:x"])
def test_an_unusable_device_is_one_line_and_exit_2(device, capsys):
    with pytest.raises(SystemExit) as exc:
        train_dcgan_main(["--device", device])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert f"error: --device {device}:" in lines[-1] and sum("error" in line for line in lines) == 1


def test_a_full_world_build_logs_the_dcgan_quality_curve(tmp_path):
    logged = []
    cfg = DCGANTrainConfig(steps=2, batch_size=8, ngf=8, ndf=8)
    metrics = build_dcgan(cfg, tmp_path, lambda step, m: logged.append((step, m)), False, shapes_classifier())
    judged = [step for step, m in logged if "frechet_classifier" in m]
    assert judged == [1, 2]
    assert metrics["frechet_classifier"] > metrics["frechet_classifier_real_vs_real"] > 0
