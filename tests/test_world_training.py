"""Training code of the world models on tiny budgets (the real builds are `make world`): the
trainers, the committed recipes in conf/gan/world/, and train.py's checkpoints and resume."""

import io
import json
import random

import pytest
import torch
from gan_cli import compose_train, history
from mlflow import MlflowClient

from latentevo.errors import ConfigError
from latentevo.models.dcgan import DCGANNetD, DCGANNetG, init_weights
from latentevo.models.trained import load_network
from latentevo.models.weights import WORLD_DIR
from latentevo.search import CheckpointError
from latentevo.training import driver, jobs
from latentevo.training.clip import ClipTrainConfig, ClipTrainer, caption_batch, without_pairs
from latentevo.training.data import HELD_OUT_PAIRS, ShapesSource, degrade, scene_batch
from latentevo.training.gan import DCGANTrainer, EGANConfig, EGANTrainer, GANConfig
from latentevo.training.quality import frechet_distance
from latentevo.world import ATTRIBUTES, parse_prompt

ALL_CLASSES = tuple(ATTRIBUTES)


def test_evaluating_during_training_leaves_the_model_trainable():
    trainer = ClipTrainer(ClipTrainConfig(iterations=5, image_pretrain_steps=1, batch_size=8, warmup=1),
                          torch.Generator().manual_seed(0))
    for _ in range(2):  # judged in the pretraining phase and in the contrastive one
        trainer.step()
        trainer.evaluate(8)
    first = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for _ in range(3):
        trainer.step()
    model = trainer.network()
    assert all(p.requires_grad for p in model.parameters())
    # Parameters keep changing after the evaluations.
    last = model.state_dict()
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


def small_dcgan(ema: float = 0.0, classes: tuple[str, ...] = ALL_CLASSES) -> DCGANTrainer:
    cfg = GANConfig(iterations=6, batch_size=8, ngf=8, ndf=8, upsample="resize", classes=classes, ema=ema)
    torch.manual_seed(2)
    return DCGANTrainer(cfg, ShapesSource(), torch.Generator().manual_seed(2))


def trained(trainer: DCGANTrainer, judge=None) -> DCGANTrainer:
    for _ in range(trainer.cfg.iterations):
        trainer.step()
        if judge is not None:
            judge(trainer)
    return trainer


def small_clip() -> ClipTrainer:
    torch.manual_seed(3)
    return ClipTrainer(ClipTrainConfig(iterations=6, image_pretrain_steps=2, batch_size=8, warmup=1),
                       torch.Generator().manual_seed(3))


def small_egan() -> EGANTrainer:
    torch.manual_seed(4)
    return EGANTrainer(EGANConfig(iterations=6, batch_size=8, ngf=8, ndf=8, parents=2), ShapesSource(),
                       torch.Generator().manual_seed(4))


@pytest.mark.parametrize("make, cut", [(small_clip, 1), (small_clip, 3), (lambda: small_dcgan(ema=0.5), 3),
                                       (small_egan, 2)], ids=["clip-pretraining", "clip-contrastive", "dcgan-ema",
                                                              "egan"])
def test_a_trainer_restored_from_its_state_goes_on_as_the_uninterrupted_one(make, cut):
    """What a checkpoint keeps (saved and read as the driver does) is all a trainer needs: cut
    before or after the mini-CLIP locks its trunk, a DCGAN with its moving average, E-GAN's population."""
    whole = make()
    for _ in range(cut):
        whole.step()
    buffer = io.BytesIO()
    torch.save(whole.state(), buffer)
    buffer.seek(0)
    restored = make()
    restored.load_state(torch.load(buffer, weights_only=True))
    for _ in range(cut, whole.cfg.iterations):
        assert restored.step() == whole.step()
    for a, b in ((whole.network(), restored.network()), (whole.state(), restored.state())):
        a, b = (x.state_dict() if hasattr(x, "state_dict") else x for x in (a, b))
        assert torch.equal(torch.cat([t.flatten().float() for t in a.values() if torch.is_tensor(t)]),
                           torch.cat([t.flatten().float() for t in b.values() if torch.is_tensor(t)]))


def test_the_dcgan_samples_and_saves_its_moving_average():
    z = torch.randn(4, 129)
    averaged = trained(small_dcgan(ema=0.5))
    assert averaged.generator() is averaged.ema and averaged.network() is averaged.ema and not averaged.ema.training
    # Same seed without the average: the last iterate, which the average lags behind.
    raw = trained(small_dcgan())
    assert raw.generator() is raw.net_g
    assert not torch.allclose(averaged.sample(z), raw.sample(z))
    # Judging the raw generator mid-run (eval mode, no gradients) leaves its training unchanged.
    judged = trained(small_dcgan(), judge=lambda t: t.sample(z))
    assert torch.equal(judged.sample(z), raw.sample(z))


def test_the_instance_noise_anneals_over_its_fraction_of_the_run():
    trainer = small_dcgan()
    sigmas = [trainer.step()["instance_noise"] for _ in range(6)]
    assert sigmas[0] == pytest.approx(0.15) and sigmas[1] == pytest.approx(0.1) and sigmas[3:] == [0.0, 0.0, 0.0]
    trainer.cfg.noise_anneal, trainer.iteration = 1.0, 3
    assert trainer.sigma() == pytest.approx(0.075)


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


def test_an_unconditional_dcgan_reads_noise_only():
    trainer = small_dcgan(classes=())
    assert trainer.latent_dim == 100 and trainer.architecture()["classes"] == []
    assert trainer.class_labels(torch.randn(3, 100)) == {}


def recipe(name: str, *overrides: str):
    return compose_train([f"world={name}", *overrides])


@pytest.mark.parametrize("model,name", [("clip", "clip"), ("classifier", "classifier"), ("dcgan", "dcgan_gpu")])
def test_each_committed_model_was_trained_by_its_recipe(model, name):
    """The recipe in conf/gan/world/ says what the committed JSON recorded of its training."""
    committed = json.loads((WORLD_DIR / f"{model}.json").read_text())["training"]
    cfg = recipe(name)
    assert cfg.model.name == model and cfg.half and cfg.manifest and cfg.save.endswith(f"/{model}.safetensors")
    assert cfg.model.iterations == committed.pop("steps") + committed.get("image_pretrain_steps", 0)
    top = {"seed", "instance_noise", "noise_anneal", "real_label", "device"}
    committed.pop("trained_steps", None)
    for key, value in committed.items():
        got = cfg[key] if key in top else cfg.model[key]
        assert (list(got) if key == "classes" else got) == value, key


def test_the_dcgan_recipes_differ_as_the_docs_say():
    cpu, gpu = recipe("dcgan_cpu"), recipe("dcgan_gpu")
    assert (cpu.device, gpu.device) == ("cpu", "cuda")
    assert list(cpu.model.classes) == list(gpu.model.classes) == list(ALL_CLASSES)
    assert (cpu.model.iterations, cpu.model.batch_size, cpu.model.ngf, cpu.model.ndf) == (5000, 64, 64, 64)
    assert (gpu.model.iterations, gpu.model.batch_size, gpu.model.ngf, gpu.model.ndf) == (24000, 128, 128, 128)
    assert (cpu.noise_anneal, cpu.model.ema, gpu.noise_anneal, gpu.model.ema) == (0.5, 0.0, 1.0, 0.999)
    assert cpu.quality.world_dir == cpu.world_dir and cpu.quality.inception is False


def test_the_judging_classifier_of_a_recipe_is_found_from_any_working_directory(tmp_path, monkeypatch):
    """world_dir is relative to the project, as `save` is: the job's identity hashes that classifier."""
    monkeypatch.chdir(tmp_path)
    cfg = recipe("dcgan_cpu")
    assert not cfg.quality.world_dir.startswith("/")
    assert jobs.loaded_files(cfg) == [WORLD_DIR / "classifier.safetensors", WORLD_DIR / "classifier.json"]
    other = recipe("dcgan_cpu", f"world_dir={tmp_path}")
    assert jobs.job_identity(other) != jobs.job_identity(cfg)  # no classifier there: another job


def test_the_projection_discriminator_judges_an_image_against_its_labels():
    torch.manual_seed(0)
    net = DCGANNetD(8, {"shape": 6})
    net.apply(init_weights)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    circle, star = {"shape": torch.zeros(3, dtype=torch.long)}, {"shape": torch.full((3,), 3)}
    assert not torch.allclose(net(x, circle), net(x, star))
    plain = DCGANNetD(8)
    assert torch.equal(plain(x), plain(x, circle))


def resumable(tmp_path, name: str, *extra: str):
    return compose_train(["model=dcgan", "model.iterations=6", "model.batch_size=8", "model.ngf=8", "model.ndf=8",
                          "model.upsample=resize", "model.classes=[shape,colour]", "model.ema=0.5", "eval_every=3",
                          "eval_samples=32", "final_samples=32", "sample_every=3", "checkpoint_every=2",
                          f"save={tmp_path}/{name}.safetensors", f"paths.checkpoints={tmp_path}/ckpt",
                          f"experiment_name=resume_{name}", *extra])


def test_an_interrupted_training_resumes_in_its_run_and_ends_as_an_uninterrupted_one(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    driver.train(resumable(tmp_path, "whole"))
    step = DCGANTrainer.step

    def cut_at_five(trainer):
        if trainer.iteration == 4:  # after the checkpoint of iteration 4
            raise KeyboardInterrupt
        return step(trainer)

    monkeypatch.setattr(DCGANTrainer, "step", cut_at_five)
    cut = resumable(tmp_path, "cut")
    with pytest.raises(KeyboardInterrupt):
        driver.train(cut)
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("resume_cut").experiment_id
    (killed,) = client.search_runs([experiment])
    assert killed.info.status == "KILLED"
    checkpoint = driver.training_job(cut).checkpoint
    assert torch.load(checkpoint, weights_only=True)["iteration"] == 4
    monkeypatch.setattr(DCGANTrainer, "step", step)
    driver.train(cut)
    (run,) = client.search_runs([experiment])
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    assert not checkpoint.exists()
    assert sorted(history(client, run.info.run_id, "loss_d")) == [1, 2, 3, 4, 5, 6]
    assert sorted(history(client, run.info.run_id, "fd_classifier")) == [1, 3, 6]
    whole, resumed = load_network(tmp_path / "whole.safetensors"), load_network(tmp_path / "cut.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))


def test_a_damaged_checkpoint_is_one_line_naming_it(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    cfg = resumable(tmp_path, "damaged")
    checkpoint = driver.training_job(cfg).checkpoint
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read") as err:
        driver.train(cfg)
    assert str(checkpoint) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("device", ["tpu", "cuda:x"])
def test_an_unusable_device_is_a_config_error_before_any_run(device, store, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    with pytest.raises(ConfigError, match=f"unknown device '{device}'"):
        driver.train(resumable(tmp_path, "device", f"device={device}"))
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("resume_device")
    assert experiment is None or client.search_runs([experiment.experiment_id]) == []


def test_only_the_gans_train_on_an_accelerator(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setattr(driver, "resolve_device", lambda name: torch.device("cuda"))
    with pytest.raises(ConfigError, match="only the GANs"):
        driver.train(compose_train(["model=vae", "device=cuda", f"save={tmp_path}/vae.safetensors"]))
