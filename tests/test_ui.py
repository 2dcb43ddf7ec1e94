"""The MLflow UI on a few short runs, in headless Chromium: the runs table, the chart view of
best_cos_sim and the run page's best image at the last generation (its step slider) all show."""

import numpy as np
import pytest
from PIL import Image

from scripts.ui_screenshots import SHOTS, capture


@pytest.mark.browser
def test_the_ui_shows_the_runs_their_chart_and_the_best_image_slider(tmp_path):
    shots = capture(tmp_path / "ui", tmp_path / "store")
    assert [p.name for p in shots] == list(SHOTS)
    for path in shots:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000, path.name
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50, path.name  # a page, not a blank
