"""Prompt algebra and image prompts: the terms and weights parsed, what a penalty does to the
fitness, images read in any mode, an image prompt of a rendered scene found by a short search,
term metrics logged, and the image's contents part of the job's identity. In-process."""

import math

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image
from pipeline_cli import MECHANICS_CLIP, ROOT, runs_of

from latentevo import prompts
from latentevo.errors import ConfigError
from latentevo.pipeline import RunSpec, run_pack
from latentevo.pipeline.measures import ground_truth, target_content
from latentevo.pipeline.models import Models, Request
from latentevo.pipeline.targets import read_image
from latentevo.pipeline.terms import combine
from latentevo.resume import Job
from latentevo.world import COLOURS
from latentevo.world.captions import UNNAMED, parse_prompt

SCENE = "scene:shape=star,colour=red,background=blue"


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=[*MECHANICS_CLIP, *overrides])


def test_terms_weights_and_penalties_are_parsed():
    prompt = prompts.parse("a red star | a blue background:0.5 | -a red background")
    assert [t.text for t in prompt.terms] == ["a red star", "a blue background", "a red background"]
    assert prompt.weights == [1.0, 0.5, -1.0]
    assert prompt.positive_texts == ["a red star", "a blue background"] and not prompt.is_plain
    assert [t.label for t in prompt.terms] == ["a red star:1", "a blue background:0.5", "-a red background:1"]
    assert prompts.parse("-a red background:2").weights == [-2.0]
    plain = prompts.parse("a red circle")
    assert plain.is_plain and plain.terms[0].text == "a red circle"
    with_image = prompts.parse(None, SCENE, 0.5)
    assert with_image.terms[0].image == SCENE and with_image.weights == [0.5] and not with_image.is_plain


@pytest.mark.parametrize(("prompt", "message"), [
    ("a | ", "prompt term 1 ('') is empty"),
    ("a red star:x", "has weight 'x'; a weight must be a positive finite number"),
    ("a red star:0", "has weight '0'"),
    ("a red star:-1", "has weight '-1'"),
    ("a red star:inf", "has weight 'inf'"),
    ("a red star:nan", "has weight 'nan'"),
    ("-", "prompt term 0 ('-') is empty"),
    ("   ", "prompt is empty; give one"),
])
def test_bad_terms_are_refused_with_one_line(prompt, message):
    with pytest.raises(ConfigError) as err:
        prompts.parse(prompt)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("image_prompt", "message"), [
    ("scene:shape=star,colour=red", "names no background"),
    ("scene:shape=star,colour=red,background=red", "has the object's colour as its background"),
    ("scene:shape=blob,colour=red,background=blue", "shape='blob' is not one of"),
    ("scene:hue=red,shape=star,colour=red,background=blue", "attribute 'hue' is unknown"),
    ("/nonexistent/target.png", "does not exist"),
])
def test_bad_image_prompts_are_refused_before_anything_loads(image_prompt, message):
    with pytest.raises(ConfigError, match=message):
        prompts.parse(None, image_prompt)


def test_a_bad_image_prompt_weight_is_refused():
    with pytest.raises(ConfigError, match="image_prompt_weight has weight '0.0'"):
        prompts.parse("a red star", SCENE, 0.0)


def test_truth_is_what_the_positive_terms_and_the_scene_name(tmp_path):
    algebra = prompts.parse("a red star | a blue background:0.5 | -a green background")
    assert target_content(algebra) == parse_prompt("a red star on a blue background")
    scene = target_content(prompts.parse(None, "scene:shape=star,colour=red,background=blue,position=left"))
    assert scene == parse_prompt("a red star on the left on a blue background")
    (tmp_path / "file.png").write_bytes(b"")
    assert target_content(prompts.parse(None, str(tmp_path / "file.png"))) == [UNNAMED] * 5  # a file's is unknown


@pytest.fixture(scope="module")
def models():
    return Models.of(config())


def test_a_penalty_lowers_the_fitness_of_images_that_have_it(models):
    """'a red star | -a red background' against 'a red star': images whose background is red
    lose more fitness than the others."""
    latents = models.generator.sample_latents(512, torch.Generator().manual_seed(0)).double().numpy()
    red_background = (models.generator.scenes(torch.from_numpy(latents).float()).background
                      == COLOURS.index("red")).numpy()
    assert 20 < red_background.sum() < 500
    penalised = prompts.parse("a red star | -a red background")
    plain = prompts.parse("a red star")
    sims = [s.terms for s in models.scores([Request(latents, models.targets(penalised), None),
                                            Request(latents, models.targets(plain), None)])]
    assert sims[0].shape == (512, 2) and sims[1].shape == (512, 1)
    assert np.array_equal(sims[0][:, 0], sims[1][:, 0])  # the shared term, the same in either run
    loss = combine(sims[1], np.array(plain.weights)) - combine(sims[0], np.array(penalised.weights))
    assert np.allclose(loss, sims[0][:, 1])
    assert loss[red_background].mean() > loss[~red_background].mean() + 0.05


def test_a_plain_prompts_fitness_is_its_cos_sim_exactly(models):
    latents = models.generator.sample_latents(16, torch.Generator().manual_seed(1)).double().numpy()
    prompt = prompts.parse("a red circle")
    sims = models.scores([Request(latents, models.targets(prompt), None)])[0].terms
    direct = (models.scorer.embed_images(models.generator(torch.from_numpy(latents).float()))
              @ models.scorer.embed_text(["a red circle"])[0]).double().numpy()
    assert np.array_equal(combine(sims, np.array(prompt.weights)), sims[:, 0])
    assert np.allclose(sims[:, 0], direct, atol=1e-6)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L", "CMYK", "I;16"])
def test_images_of_any_common_mode_are_read_as_rgb(tmp_path, mode):
    rgb = Image.new("RGB", (20, 10), (255, 0, 0))
    image = rgb.convert("L").convert("I;16") if mode == "I;16" else rgb.convert(mode)
    path = tmp_path / ("target.jpg" if mode == "CMYK" else "target.png")
    image.save(path)
    pixels = read_image(path)
    assert pixels.shape == (1, 3, 10, 20) and 0 <= pixels.min() and pixels.max() <= 1
    if mode not in ("L", "I;16"):
        assert pixels[0, 0].mean() > 0.9 and pixels[0, 2].mean() < 0.1  # red stays red


def test_a_file_that_is_not_an_image_or_is_truncated_is_one_line(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ConfigError, match="is not an image PIL can read"):
        read_image(text)
    png = tmp_path / "truncated.png"
    Image.new("RGB", (64, 64), (10, 200, 30)).save(png)
    png.write_bytes(png.read_bytes()[:60])
    with pytest.raises(ConfigError, match="cannot be read"):
        read_image(png)


def test_an_image_file_and_a_scene_of_it_are_the_same_target(models, tmp_path):
    from latentevo.pipeline.targets import prompt_image

    rendered = prompt_image(SCENE)
    path = tmp_path / "star.png"
    Image.fromarray((rendered[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
    from_file = models.targets(prompts.parse(None, str(path)))[0]
    from_scene = models.targets(prompts.parse(None, SCENE))[0]
    assert float(from_file @ from_scene) > 0.99


def test_an_image_files_contents_are_part_of_the_identity(tmp_path):
    path = tmp_path / "target.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(path)
    first = Job.of(config(f"image_prompt={path}"), "sqlite:///x.db").identity
    Image.new("RGB", (8, 8), (0, 0, 255)).save(path)
    second = Job.of(config(f"image_prompt={path}"), "sqlite:///x.db").identity
    assert first != second
    # without an image prompt its keys are not part of the identity: the jobs of before stay the same
    plain = Job.of(config(), "sqlite:///x.db").identity
    assert plain == Job.of(config("image_prompt_weight=3.0"), "sqlite:///x.db").identity != first


def test_a_short_search_matches_an_image_prompt_of_a_rendered_scene(tracking):
    cfg = config("prompt=null", f"image_prompt='{SCENE}'", "generations=15", "log_every=5", "experiment_name=scene")
    outcome = run_pack([RunSpec.of(cfg, "scene")])[0]
    assert outcome.status == "FINISHED"
    client, (run,) = runs_of(tracking, "scene")
    metrics = run.data.metrics
    assert metrics["truth_match"] == 1.0  # star, red, blue: the target scene's three attributes
    assert math.isclose(metrics["best_cos_sim"], metrics["term0_cos_sim"])  # one term of weight 1
    assert run.data.params["term0"] == f"image:{SCENE}:1"


def test_each_term_is_logged_for_the_best_image_and_sums_to_the_fitness(tracking, models):
    cfg = config("prompt='a red star | a blue background:0.5 | -a red background'", "generations=6", "log_every=3",
                 "experiment_name=algebra")
    assert run_pack([RunSpec.of(cfg, "algebra")])[0].status == "FINISHED"
    client, (run,) = runs_of(tracking, "algebra")
    history = {k: [m.value for m in client.get_metric_history(run.info.run_id, k)]
               for k in ("best_cos_sim", "term0_cos_sim", "term1_cos_sim", "term2_cos_sim")}
    assert all(len(v) == 6 for v in history.values())
    combined = np.array(history["term0_cos_sim"]) + 0.5 * np.array(history["term1_cos_sim"]) \
        - np.array(history["term2_cos_sim"])
    assert np.allclose(combined, history["best_cos_sim"], atol=1e-6)
    assert [run.data.params[f"term{i}"] for i in range(3)] == ["a red star:1", "a blue background:0.5",
                                                                "-a red background:1"]
    text = open(client.download_artifacts(run.info.run_id, "prompt_terms.txt")).read()
    assert "term2_cos_sim\tweight -1\ta red background" in text
    # the penalty names no background: colour_leak (background red, the object's colour) is measured
    assert "colour_leak" in run.data.metrics
    assert set(ground_truth(models.generator, "a red star | -a red background")(np.zeros((1, 32)))) == \
        {"truth_match", "colour_leak"}
