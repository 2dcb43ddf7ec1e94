"""The real models (BigGAN-deep, StyleGAN2 config-f, OpenAI CLIP): architectures against their
published sizes, weight loading and its one-line errors, the search-space options, and runs
through the real CLI with randomly initialised models (no weights can be downloaded here)."""

import time

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from pipeline_cli import error_lines, run_cli, runs_of
from pytorch_pretrained_biggan import BigGAN
from safetensors.torch import save_file

from latentevo.errors import ConfigError, WeightsError
from latentevo.models import pretrained
from latentevo.models.biggan import BigGANDeepGenerator, biggan_config, class_index
from latentevo.models.clip_pretrained import pretrained_clip
from latentevo.models.stylegan2 import DATASETS, StyleGAN2Generator, StyleGAN2Network
from latentevo.pipeline.models import Models, Request

# Published parameter counts. BigGAN-deep: Brock et al. 2019 (50.4M / 55.9M / 56.2M at 128 /
# 256 / 512 px). StyleGAN2 config-f at 1024 px: 30,370,060 (NVIDIA's official implementation);
# the 512 and 256 px generators lose only their top layers. OpenAI CLIP ViT-B/32: 151,277,313.
BIGGAN_PARAMS_M = {128: 50.4, 256: 55.9, 512: 56.2}
STYLEGAN2_PARAMS = {1024: 30_370_060, 512: 30_276_583, 256: 30_034_338}
VIT_B_32_PARAMS = 151_277_313
# Names and shapes in the converted (rosinality) checkpoints' g_ema, at 256 px
CONVERTED_KEYS = {
    "style.1.weight": (512, 512),
    "style.8.bias": (512,),
    "input.input": (1, 512, 4, 4),
    "conv1.conv.weight": (1, 512, 512, 3, 3),
    "conv1.conv.modulation.bias": (512,),
    "conv1.noise.weight": (1,),
    "conv1.activate.bias": (512,),
    "to_rgb1.conv.weight": (1, 3, 512, 1, 1),
    "to_rgb1.bias": (1, 3, 1, 1),
    "convs.0.conv.blur.kernel": (4, 4),
    "convs.10.conv.weight": (1, 128, 256, 3, 3),
    "to_rgbs.5.upsample.kernel": (4, 4),
    "noises.noise_0": (1, 1, 4, 4),
    "noises.noise_12": (1, 1, 256, 256),
}
RANDOM_CLIP = ["clip=vit_b_32", "clip.random_init=true"]


def param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- architectures ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [128, 256, 512])
def test_biggan_deep_configs_have_the_published_size(size):
    assert round(param_count(BigGAN(biggan_config(size))) / 1e6, 1) == BIGGAN_PARAMS_M[size]


@pytest.mark.parametrize("resolution", [1024, 512, 256])
def test_stylegan2_config_f_has_the_published_size(resolution):
    assert param_count(StyleGAN2Network(resolution)) == STYLEGAN2_PARAMS[resolution]


def test_stylegan2_uses_the_converted_checkpoints_names():
    state = StyleGAN2Network(DATASETS["church"]).state_dict()
    assert {k: tuple(state[k].shape) for k in CONVERTED_KEYS} == CONVERTED_KEYS
    assert len(state) == 135  # 8 mapping layers, 13 styled convs, 7 RGB outputs, 13 noises, 12 blur kernels


def test_vit_b_32_is_openais_architecture():
    scorer = pretrained_clip("ViT-B-32", "openai", random_init=True)
    assert param_count(scorer.model) == VIT_B_32_PARAMS
    assert type(scorer.model.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"  # as OpenAI trained it
    assert (scorer.image_size, scorer.context_length) == (224, 77)
    assert torch.allclose(scorer.mean.flatten(), torch.tensor([0.48145466, 0.4578275, 0.40821073]))


# --- BigGAN-deep as a search space -------------------------------------------------------------


@pytest.fixture(scope="module")
def biggan():
    torch.manual_seed(0)
    return BigGANDeepGenerator(128, random_init=True)


def test_biggan_searches_z_and_class_genes(biggan):
    latents = biggan.sample_latents(3, torch.Generator().manual_seed(0))
    assert latents.shape == (3, 128 + 1000) and latents.abs().max() <= 2.0
    classes = biggan.class_vector(latents)
    assert torch.allclose(classes.sum(1), torch.ones(3))
    images = biggan(latents)
    assert images.shape == (3, 3, 128, 128) and torch.isfinite(images).all()
    assert 0 <= images.min() and images.max() <= 1
    assert (images[0] - images[1]).abs().mean() > 1e-3  # a random init still maps latents apart
    assert torch.allclose(biggan(latents[:1]), images[:1], atol=1e-5)  # one image, whatever its batch


def test_biggan_fixed_class_searches_z_only():
    generator = BigGANDeepGenerator(128, class_name="Church", random_init=True)
    assert generator.latent_dim == 128
    vector = generator.class_vector(torch.zeros(2, 128))
    assert vector.argmax(1).tolist() == [497, 497] and vector.sum().item() == 2


def test_imagenet_classes_by_name_or_index():
    assert [class_index(name) for name in ("llama", "Kerry blue terrier", "shopping cart", 7)] == [355, 183, 791, 7]
    with pytest.raises(ConfigError, match="did you mean .*wall clock"):
        class_index("clock")
    with pytest.raises(ConfigError, match="index"):
        class_index(1000)


@pytest.mark.parametrize("bad", [{"size": 64}, {"truncation": 0.0}, {"truncation": 1.5}, {"precision": "fp8"}])
def test_biggan_bad_settings_are_one_line_errors(bad):
    with pytest.raises(ConfigError):
        BigGANDeepGenerator(**({"size": 128, "random_init": True} | bad))


def test_biggan_weights_load_from_the_weights_directory(biggan, tmp_path):
    torch.save(biggan.model.state_dict(), tmp_path / "biggan-deep-128-pytorch_model.bin")
    loaded = BigGANDeepGenerator(128, weights=str(tmp_path))
    latents = biggan.sample_latents(2, torch.Generator().manual_seed(1))
    assert torch.equal(loaded(latents), biggan(latents))


def test_biggan_offline_without_weights_stops_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(WeightsError) as err:
        BigGANDeepGenerator(256, weights=str(tmp_path))
    message = str(err.value)
    assert time.monotonic() - start < 30
    assert "BigGAN-deep-256" in message and str(tmp_path / "biggan-deep-256-pytorch_model.bin") in message
    assert "biggan-deep-256-pytorch_model.bin" in message.split("download ")[-1] and "\n" not in message


def test_corrupt_biggan_weights_are_named(tmp_path):
    (tmp_path / "biggan-deep-128-pytorch_model.bin").write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(WeightsError, match="cannot read the BigGAN-deep-128 weights .*corrupt"):
        BigGANDeepGenerator(128, weights=str(tmp_path))


# --- StyleGAN2 as a search space ---------------------------------------------------------------


@pytest.fixture(scope="module")
def stylegan2():
    torch.manual_seed(0)
    return StyleGAN2Generator("church", resolution=32, random_init=True)


def test_stylegan2_z_space_is_deterministic_and_truncates_to_the_mean(stylegan2):
    z = stylegan2.sample_latents(3, torch.Generator().manual_seed(0))
    assert z.shape == (3, 512) and stylegan2.latent_bound == 10.0
    images = stylegan2(z)
    assert images.shape == (3, 3, 32, 32) and torch.equal(stylegan2(z), images)  # fixed noise
    truncated = StyleGAN2Generator("church", resolution=32, random_init=True, truncation_psi=0.5)
    truncated.load_state_dict(stylegan2.state_dict())
    w, half = stylegan2.to_w(z), truncated.to_w(z)
    assert torch.allclose(half - stylegan2.w_avg, 0.5 * (w - stylegan2.w_avg), atol=1e-5)


def test_stylegan2_w_space_is_standardised(stylegan2):
    w_space = StyleGAN2Generator("church", space="w", resolution=32, random_init=True)
    w_space.load_state_dict(stylegan2.state_dict())
    latents = w_space.sample_latents(256, torch.Generator().manual_seed(0))
    assert latents.abs().max() <= 3.0 and 0.7 < latents.std().item() < 1.3
    assert torch.allclose(w_space.to_w(torch.zeros(1, 512))[0], w_space.w_avg)
    z = stylegan2.sample_latents(2, torch.Generator().manual_seed(2))
    as_w = (stylegan2.network.style(z) - w_space.w_avg) / w_space.w_std
    assert torch.allclose(w_space(as_w), stylegan2(z), atol=1e-4)


def test_stylegan2_speed_options_keep_the_image(stylegan2):
    z = stylegan2.sample_latents(2, torch.Generator().manual_seed(3))
    fast = StyleGAN2Generator("church", resolution=32, random_init=True, channels_last=True, precision="bf16")
    fast.load_state_dict(stylegan2.state_dict())
    assert (fast(z) - stylegan2(z)).abs().max() < 0.1


def test_stylegan2_state_dict_round_trip(tmp_path):
    torch.manual_seed(1)
    original = StyleGAN2Generator("church", random_init=True)
    latent_avg = torch.randn(512)
    torch.save({"g_ema": original.network.state_dict(), "latent_avg": latent_avg},
               tmp_path / "stylegan2-church-config-f.pt")
    loaded = StyleGAN2Generator("church", weights=str(tmp_path))
    state, restored = original.network.state_dict(), loaded.network.state_dict()
    assert state.keys() == restored.keys() and all(torch.equal(state[k], restored[k]) for k in state)
    assert torch.equal(loaded.w_avg, latent_avg)  # the checkpoint's mean W, not an estimate
    z = original.sample_latents(1, torch.Generator().manual_seed(0))
    assert torch.allclose(loaded.network.synthesis(loaded.network.style(z)),
                          original.network.synthesis(original.network.style(z)))


@pytest.mark.parametrize("content, message", [
    ({"g": {}}, "no 'g_ema'"),
    ({"g_ema": {"style.1.weight": torch.zeros(2, 2)}}, "do not fit StyleGAN2-church"),
])
def test_wrong_stylegan2_checkpoints_are_one_line_errors(tmp_path, content, message):
    torch.save(content, tmp_path / "stylegan2-church-config-f.pt")
    with pytest.raises(WeightsError, match=message) as err:
        StyleGAN2Generator("church", weights=str(tmp_path))
    assert "\n" not in str(err.value)


def test_stylegan2_bad_settings_are_one_line_errors(tmp_path):
    for bad in ({"dataset": "horse"}, {"space": "w+"}, {"truncation_psi": 0}, {"resolution": 48}):
        with pytest.raises(ConfigError):
            StyleGAN2Generator(**({"dataset": "church", "random_init": True} | bad))
    with pytest.raises(ConfigError, match="256 px"):
        StyleGAN2Generator("church", resolution=32, weights=str(tmp_path))


# --- CLIP and the weights directory -------------------------------------------------------------


def test_clip_checkpoint_location_and_corrupt_file(tmp_path):
    path = tmp_path / "open_clip/timm/vit_base_patch32_clip_224.openai/open_clip_model.safetensors"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="cannot load the CLIP ViT-B-32 \\(openai\\) weights .*corrupt"):
        pretrained_clip("ViT-B-32", "openai", weights=str(tmp_path))


def test_clip_loads_a_checkpoint_file(tmp_path):
    torch.manual_seed(0)
    model = open_clip.create_model("shapes-clip-rn")
    save_file(model.state_dict(), tmp_path / "clip.safetensors")
    scorer = pretrained_clip("shapes-clip-rn", str(tmp_path / "clip.safetensors"))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), scorer.model.state_dict().values()))


def test_unknown_clip_names_are_one_line_errors():
    with pytest.raises(ConfigError, match="unknown open_clip model"):
        pretrained_clip("ViT-X-99", "openai", random_init=True)
    with pytest.raises(ConfigError, match="known: openai"):
        pretrained_clip("ViT-B-32", "nope", random_init=True)


def test_download_is_tried_only_when_the_host_answers(tmp_path, monkeypatch):
    fetched = []

    def download(url, path):
        fetched.append(url)
        path.write_bytes(b"weights")

    monkeypatch.setattr(pretrained, "can_download", lambda url: True)
    path = pretrained.locate_or_download("M", "sub/m.bin", tmp_path, "get it", "https://example.org/m.bin", download)
    assert path.read_bytes() == b"weights" and fetched == ["https://example.org/m.bin"]
    pretrained.locate_or_download("M", "sub/m.bin", tmp_path, "get it", "https://example.org/m.bin", download)
    assert len(fetched) == 1  # found locally the second time

    def broken(url, path):
        path.write_bytes(b"half")
        raise ConnectionError("reset by peer\nsecond line")

    with pytest.raises(WeightsError, match=r"downloading https://example.org/n.bin failed \(reset by peer\)") as err:
        pretrained.locate_or_download("M", "n.bin", tmp_path, "get it", "https://example.org/n.bin", broken)
    assert "\n" not in str(err.value) and sorted(p.name for p in tmp_path.iterdir()) == ["sub"]
    monkeypatch.undo()
    monkeypatch.setenv("LATENTEVO_OFFLINE", "1")
    assert not pretrained.can_download("https://example.org/m.bin")


def test_fitness_halves_chunks_that_run_out_of_gpu_memory():
    class Scorer:
        views = 1

        def apply_views(self, images, params):
            return images

        def embed_images(self, images):
            return images.mean((2, 3))

    sizes = []

    def generator(z):
        sizes.append(len(z))
        if len(z) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return z[:, :, None, None].expand(-1, -1, 2, 2)

    latents = np.arange(10, dtype=float).reshape(5, 2)
    requests = [Request(latents[:3], torch.ones(1, 2), None), Request(latents[3:], torch.tensor([[1.0, 0.0]]), None)]
    models = Models(torch.device("cpu"), generator, Scorer(), batch_size=8)
    first, second = models.scores(requests)
    assert first.terms.shape == (3, 1) and second.terms.shape == (2, 1)
    # each against its own text
    assert np.allclose(first.terms[:, 0], latents[:3].sum(1)) and np.allclose(second.terms[:, 0], latents[3:, 0])
    # one pass for all 5 while batch_size allows, then halved (8 -> 4 -> 2) until every chunk fits:
    # the last attempt covers all 5 latents in chunks that fit
    last_failure = max(i for i, n in enumerate(sizes) if n > 2)
    assert sizes[0] == 5 and max(sizes[1:]) <= 4
    assert sum(sizes[last_failure + 1:]) == 5 and max(sizes[last_failure + 1:]) == 2
    sizes.clear()
    models.scores(requests)
    assert max(sizes) == 2  # the size that fitted is kept

    def never_fits(z):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(ConfigError, match="one latent per forward pass"):
        Models(torch.device("cpu"), never_fits, Scorer(), batch_size=4).scores(requests)


# --- through the real CLI -----------------------------------------------------------------------


def finished_run(store, result, experiment):
    assert result.returncode == 0, result.stderr[-3000:]
    client, runs = runs_of(store, experiment)
    assert [r.info.status for r in runs] == ["FINISHED"]
    return client, runs[0]


def test_biggan_random_init_runs_through_the_cli(store, tmp_path):
    args = ["generator=biggan_deep_128", "generator.random_init=true", *RANDOM_CLIP, "pop_size=2", "generations=2",
            "log_every=1", "prompt=a dog in the fog", "experiment_name=real_biggan"]
    client, run = finished_run(store, run_cli(args, store, tmp_path), "real_biggan")
    params = run.data.params
    assert (params["choice.generator"], params["choice.clip"], params["generator.size"]) == (
        "biggan_deep_128", "vit_b_32", "128")
    history = client.get_metric_history(run.info.run_id, "best_cos_sim")
    assert sorted(p.step for p in history) == [0, 1] and all(-1 <= p.value <= 1 for p in history)
    best = Image.open(client.download_artifacts(run.info.run_id, "best.png", str(tmp_path)))
    assert best.size == (128, 128)
    grids = {a.path for a in client.list_artifacts(run.info.run_id, "population")}
    assert grids == {"population/gen_0000.png", "population/gen_0001.png"}
    latents = np.load(client.download_artifacts(run.info.run_id, "population.npz", str(tmp_path)))["latents"]
    assert latents.shape == (2, 1128)


def test_stylegan2_random_init_runs_through_the_cli_at_reduced_resolution(store, tmp_path):
    args = ["generator=stylegan2_church", "generator.random_init=true", "generator.resolution=32", "generator.space=w",
            *RANDOM_CLIP, "algo=de", "pop_size=4", "generations=2", "prompt=red gothic church",
            "experiment_name=real_stylegan2"]
    client, run = finished_run(store, run_cli(args, store, tmp_path), "real_stylegan2")
    assert run.data.params["generator.space"] == "w" and run.data.params["choice.generator"] == "stylegan2_church"
    assert run.data.metrics["n_evals"] == 8


def test_missing_weights_offline_stop_the_cli_with_one_line(store, tmp_path):
    empty = tmp_path / "weights"
    args = ["generator=biggan_deep_256", "clip=vit_b_32", f"paths.weights={empty}", "pop_size=2", "generations=1",
            "experiment_name=real_missing"]
    result = run_cli(args, store, tmp_path / "out", env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 1
    [line] = error_lines(result.stderr)
    assert "BigGAN-deep-256" in line and str(empty / "biggan-deep-256-pytorch_model.bin") in line
    assert "cannot be reached" in line and "download https://" in line and "random_init=true" in line
    assert "Traceback" not in result.stderr
    _, runs = runs_of(store, "real_missing")
    assert all(r.info.status != "RUNNING" for r in runs)


def test_missing_stylegan2_and_clip_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError) as err:
        StyleGAN2Generator("ffhq", weights=str(tmp_path))
    assert str(tmp_path / "stylegan2-ffhq-config-f.pt") in str(err.value) and "convert_weight.py" in str(err.value)
    with pytest.raises(WeightsError) as err:
        pretrained_clip("ViT-B-32", "openai", weights=str(tmp_path))
    expected = tmp_path / "open_clip/timm/vit_base_patch32_clip_224.openai/open_clip_model.safetensors"
    assert str(expected) in str(err.value) and (
        "https://huggingface.co/timm/vit_base_patch32_clip_224.openai" in str(err.value))


@pytest.mark.parametrize("name, jobs, generators", [
    ("thesis_ga_vs_de", 100, {"stylegan2_car"}),
    ("thesis_church", 40, {"stylegan2_church", "biggan_deep_256"}),
    ("thesis_ginger_boy", 40, {"stylegan2_ffhq", "biggan_deep_256"}),
    ("thesis_clown_cyclist", 60, {"stylegan2_cat", "stylegan2_car", "biggan_deep_256"}),
])
def test_thesis_experiments_sweep_the_real_models_and_have_figures(name, jobs, generators):
    from analysis.make_figures import DRAW, FULL, QUICK, THESIS_EXPERIMENTS
    from analysis.sweeps import sweep_jobs

    cfg, expanded = sweep_jobs(name)
    assert len(expanded) == jobs and cfg.hydra.runtime.choices.clip == "vit_b_32"
    swept = {o.split("=", 1)[1] for job in expanded for o in job if o.startswith("generator=")}
    assert (swept or {cfg.hydra.runtime.choices.generator}) == generators
    assert name in THESIS_EXPERIMENTS and name in DRAW and name in FULL.overrides and name in QUICK.overrides


def test_speed_benchmark_measures_whole_populations():
    import importlib.util

    from pipeline_cli import ROOT

    spec = importlib.util.spec_from_file_location("real_models_speed", ROOT / "benchmarks" / "real_models_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cfg = bench.compose_config(["generator=stylegan2_church", "clip=vit_b_32", *bench.RANDOM_INIT,
                                "generator.resolution=16", "threads=1", "device=cpu", "batch_size=2"])
    [row] = bench.measure(cfg, [3], repeats=1)  # 3 latents in chunks of 2
    assert row["pop"] == 3 and row["images_per_s"] > 0 and row["generator_images_per_s"] > 0
    assert row["s_per_generation"] == pytest.approx(3 / row["images_per_s"])
