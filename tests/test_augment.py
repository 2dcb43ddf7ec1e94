"""The augmented-views scorer wrapper."""

import torch

from latentevo.models.augment import AugmentedViews
from latentevo.models.clip import shapes_clip
from latentevo.models.shapes import ShapesGenerator


def setup_module():
    torch.set_num_threads(1)


def test_identity_views_score_like_the_plain_scorer():
    scorer = shapes_clip(random_init=True)
    images = ShapesGenerator()(torch.randn(3, 32, generator=torch.Generator().manual_seed(0)))
    text = scorer.embed_text(["a red circle"])[0]
    same = AugmentedViews(scorer, views=2, min_scale=1.0, max_shift=0.0)
    torch.testing.assert_close(same.cos_sim(images, text), scorer.cos_sim(images, text), atol=1e-5, rtol=0)


def test_views_are_crops_and_shifts_fixed_by_the_seed():
    images = torch.rand(2, 3, 16, 16)
    scorer = shapes_clip(random_init=True)
    views = AugmentedViews(scorer, views=4, seed=1).random_views(images)
    assert views.shape == (8, 3, 16, 16)
    assert not torch.allclose(views[0], images[0])
    assert torch.equal(views, AugmentedViews(scorer, views=4, seed=1).random_views(images))
    assert not torch.equal(views, AugmentedViews(scorer, views=4, seed=2).random_views(images))
