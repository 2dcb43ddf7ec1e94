"""The shapes world: renderer, captions, prompt parsing, and the procedural generator."""

import random

import pytest
import torch

from latentevo.errors import ConfigError
from latentevo.models.shapes import ShapesGenerator
from latentevo.world import (
    ATTRIBUTES,
    COLOURS,
    POSITIONS,
    SHAPES,
    caption_text,
    parse_prompt,
    random_scenes,
    render,
    truth_matrix,
)
from latentevo.world.captions import perturb_content, sample_content
from latentevo.world.render import hsv_to_rgb


def scenes(n=64, seed=0):
    return random_scenes(n, torch.Generator().manual_seed(seed))


def labels_of(s):
    lab = s.labels()
    return torch.stack([lab[a] for a in ATTRIBUTES], 1)


def test_render_is_deterministic_and_in_range():
    a, b = render(scenes(), 64), render(scenes(), 64)
    assert a.shape == (64, 3, 64, 64)
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a, render(scenes(seed=1), 64))


def test_resolution_is_configurable():
    s = scenes(4)
    small, big = render(s, 32), render(s, 128)
    assert small.shape[-1] == 32 and big.shape[-1] == 128
    # The same scene at two resolutions agrees once brought to one size.
    down = torch.nn.functional.avg_pool2d(big, 4)
    assert (down - small).abs().mean() < 0.03


def test_edges_are_antialiased():
    img = render(scenes(16), 64)
    values = img.flatten()
    fractional = ((values > 0.02) & (values < 0.98)).float().mean()
    assert fractional > 0.01  # partial-coverage pixels exist (a hard-edged render has almost none)


def test_pixels_show_the_ground_truth():
    s = scenes(200, seed=3)
    img = render(s, 64)
    obj_rgb, bg_rgb = hsv_to_rgb(s.colour_hsv[:, 0]), hsv_to_rgb(s.background_hsv)
    # Each pixel is the object's or the background's colour, or a blend of the two.
    dist_obj = (img - obj_rgb[:, :, None, None]).abs().sum(1)
    dist_bg = (img - bg_rgb[:, :, None, None]).abs().sum(1)
    mask = dist_obj < dist_bg
    # The object covers a believable area that grows with its size, centred where the scene says.
    area = mask.float().mean((1, 2))
    assert (area > 0.01).all() and (area < 0.6).all()
    big = s.size_name[:, 0] == 1
    assert area[big].mean() > 2 * area[~big].mean()
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    cx = (mask * xs).sum((1, 2)) / mask.sum((1, 2)) / 32 - 1 + 1 / 64
    cy = (mask * ys).sum((1, 2)) / mask.sum((1, 2)) / 32 - 1 + 1 / 64
    ring_like = torch.isin(s.shape[:, 0], torch.tensor([0, 1, 4, 5]))  # centroid = centre by symmetry
    assert (cx - s.x[:, 0])[ring_like].abs().max() < 0.05
    assert (cy - s.y[:, 0])[ring_like].abs().max() < 0.05


def test_training_scenes_are_balanced_over_values():
    s = random_scenes(4800, torch.Generator().manual_seed(0))
    lab = labels_of(s)
    for i, values in enumerate((SHAPES, COLOURS, (0, 1), POSITIONS, COLOURS)):
        counts = torch.bincount(lab[:, i], minlength=len(values)).float()
        assert counts.min() > 0.6 * counts.mean(), ATTRIBUTES[i]
    assert (lab[:, 1] != lab[:, 4]).all()  # an object never has its background's colour


def test_balanced_scenes_hold_every_pair_equally_often():
    n_pairs = len(SHAPES) * len(COLOURS)
    lab = labels_of(random_scenes(3 * n_pairs, torch.Generator().manual_seed(1)))
    counts = torch.bincount(lab[:, 0] * len(COLOURS) + lab[:, 1], minlength=n_pairs)
    assert (counts == 3).all()


def test_captions_parse_back_to_their_content():
    s = scenes(300, seed=5)
    g, rng = torch.Generator().manual_seed(0), random.Random(0)
    content = sample_content(labels_of(s), g)
    for row in content:
        text = caption_text(row, rng)
        assert parse_prompt(text) == row.tolist(), text


def test_prompt_parser_reads_user_phrasing():
    assert parse_prompt("A big yellow star on a blue background") == [3, 2, 1, -1, 4]
    assert parse_prompt("a small green square at the top") == [1, 3, 0, 3, -1]
    assert parse_prompt("a red circle") == [0, 0, -1, -1, -1]
    assert parse_prompt("  a LARGE violet disc in the middle on white") == [0, 5, 1, 0, 6]
    assert parse_prompt("a photo of a dog") == [-1] * 5


def test_truth_matrix_marks_own_captions_true_and_perturbed_false():
    lab = labels_of(scenes(128, seed=7))
    g = torch.Generator().manual_seed(1)
    content = sample_content(lab, g)
    truth = truth_matrix(lab, content)
    assert truth.diagonal().all()
    assert not truth_matrix(lab, perturb_content(content, g)).diagonal().any()
    # A caption naming nothing but the shape is true of exactly the images with that shape.
    shape_only = torch.full((1, 5), -1)
    shape_only[0, 0] = 2
    assert torch.equal(truth_matrix(lab, shape_only)[:, 0], lab[:, 0] == 2)


def test_generator_maps_latents_to_its_ground_truth():
    gen = ShapesGenerator()
    z = gen.sample_latents(32, torch.Generator().manual_seed(0))
    assert z.abs().max() <= gen.latent_bound
    images = gen(z)
    assert images.shape == (32, 3, 64, 64)
    assert torch.equal(images, render(gen.scenes(z), 64))
    # Every named value is reachable from the prior.
    lab = labels_of(gen.scenes(gen.sample_latents(3000, torch.Generator().manual_seed(1))))
    for i, a in enumerate(ATTRIBUTES):
        assert len(lab[:, i].unique()) == (2 if a == "size" else len(POSITIONS) if a == "position"
                                           else len(SHAPES) if a == "shape" else len(COLOURS)), a


def test_generator_is_smooth_almost_everywhere():
    gen = ShapesGenerator()
    z = gen.sample_latents(200, torch.Generator().manual_seed(2))
    step = 0.01 * torch.randn(z.shape, generator=torch.Generator().manual_seed(3))
    change = (gen(z + step) - gen(z)).abs().mean((1, 2, 3))
    assert (change < 0.01).float().mean() > 0.95
    # ... while a large move gives a different picture.
    far = (gen(z + 2 * torch.randn(z.shape, generator=torch.Generator().manual_seed(4))) - gen(z)).abs().mean((1, 2, 3))
    assert far.median() > 0.1


def test_entangled_mixing_keeps_the_prior_and_spreads_attributes():
    gen = ShapesGenerator(latent_dim=48)
    m = gen.mixing
    assert torch.allclose(m.T @ m, torch.eye(m.shape[1]), atol=1e-5)
    assert (m.abs() > 0.05).float().mean() > 0.5
    plain = ShapesGenerator(entangle=False)
    assert torch.equal(plain.mixing, torch.eye(32))


def test_second_object_is_optional_and_needs_latent_room():
    with pytest.raises(ConfigError, match="latent_dim"):
        ShapesGenerator(latent_dim=32, max_objects=2)
    gen = ShapesGenerator(latent_dim=64, max_objects=2)
    s = gen.scenes(gen.sample_latents(400, torch.Generator().manual_seed(0)))
    present = s.present[:, 1].float().mean()
    assert 0.15 < present < 0.5
    assert (s.colour[:, 1] != s.background)[s.present[:, 1]].all()
