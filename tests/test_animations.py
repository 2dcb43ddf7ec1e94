"""Evolution you can watch: the best image of each logged generation as a time-stepped MLflow image
(the run page's step slider), and best.gif / population.gif with one frame per logged generation,
a resumed run's included."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from hydra import compose, initialize_config_dir
from PIL import Image
from pipeline_cli import MECHANICS_CLIP, ROOT, runs_of

from latentevo.pipeline import RunSpec, run_pack
from latentevo.pipeline.animation import CAPTION_PX, GIF_MAX_SIDE, gif_frame, spaced_steps
from latentevo.pipeline.grids import MAX_TILE, MIN_TILE, image_grid
from latentevo.pipeline.observers import SaveCheckpoints
from latentevo.tracking.run import STEPPED_IMAGE, stepped_images


def specs_of(experiment: str, overrides: list[str]) -> list[RunSpec]:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return [RunSpec.of(compose("config", overrides=[*overrides, *MECHANICS_CLIP, f"experiment_name={experiment}"]),
                           experiment)]


def gif(client, run_id: str, name: str, tmp_path: Path) -> Image.Image:
    return Image.open(client.download_artifacts(run_id, name, str(tmp_path)))


def best_image_steps(client, run_id: str) -> Counter:
    """How many full-size time-stepped `best` images the store has of each step."""
    paths = [a.path for a in client.list_artifacts(run_id, "images")]
    return Counter(int(m["step"]) for p in paths if (m := STEPPED_IMAGE.fullmatch(p)) and m["key"] == "best")


def test_each_logged_generation_has_a_time_stepped_best_image_and_a_gif_frame(tracking, tmp_path):
    [outcome] = run_pack(specs_of("watch", ["generations=12", "pop_size=16", "log_every=5"]))
    assert outcome.status == "FINISHED", outcome.error
    client, [run] = runs_of(tracking, "watch")
    run_id, logged = run.info.run_id, [0, 5, 10, 11]
    assert best_image_steps(client, run_id) == Counter(logged)
    assert run.data.tags["mlflow.loggedImages"] == "True"  # what makes the run page show its image chart
    previews = [a.path for a in client.list_artifacts(run_id, "images") if a.path.endswith("+compressed.webp")]
    assert len(previews) == len(logged)

    # the last step's image is best.png
    last = stepped_images(client, run_id)[("best", 11)]
    assert np.array_equal(np.asarray(Image.open(client.download_artifacts(run_id, last, str(tmp_path)))),
                          np.asarray(Image.open(client.download_artifacts(run_id, "best.png", str(tmp_path)))))
    for name in ("best.gif", "population.gif"):
        animation = gif(client, run_id, name, tmp_path)
        assert animation.n_frames == len(logged), name
        assert animation.info["loop"] == 0 and max(animation.size) <= GIF_MAX_SIDE + CAPTION_PX
    # the last frame is the best image captioned, its palette close to its pixels
    animation = gif(client, run_id, "best.gif", tmp_path)
    animation.seek(len(logged) - 1)
    best = np.asarray(Image.open(client.download_artifacts(run_id, "best.png", str(tmp_path))))
    error = np.abs(np.asarray(animation.convert("RGB")).astype(int) - gif_frame(best, 11).astype(int))
    assert error.mean() < 1 and error.max() < 32


def test_a_resumed_run_logs_each_step_once_and_its_gifs_have_every_logged_generation(tracking, tmp_path, monkeypatch):
    """Interrupted after generation 12 with its checkpoint of generation 9, the run replays 10 to
    12 when resumed; generation 12's images were logged before the interruption."""
    overrides = ["generations=20", "pop_size=16", "log_every=3", "checkpoint_every=5", "algo=de"]
    save = SaveCheckpoints.on_generation

    def interrupted_after_12(self, run, gen):
        save(self, run, gen)
        if gen.index == 12:
            raise KeyboardInterrupt

    monkeypatch.setattr(SaveCheckpoints, "on_generation", interrupted_after_12)
    with pytest.raises(KeyboardInterrupt):
        run_pack(specs_of("watch_resumed", overrides))
    client, [run] = runs_of(tracking, "watch_resumed")
    assert run.info.status == "KILLED"
    assert best_image_steps(client, run.info.run_id) == Counter([0, 3, 6, 9, 12])

    monkeypatch.setattr(SaveCheckpoints, "on_generation", save)
    [outcome] = run_pack(specs_of("watch_resumed", overrides))
    assert outcome.status == "FINISHED" and outcome.run_id == run.info.run_id
    logged = [0, 3, 6, 9, 12, 15, 18, 19]
    assert best_image_steps(client, outcome.run_id) == Counter(logged)
    for name in ("best.gif", "population.gif"):
        assert gif(client, outcome.run_id, name, tmp_path).n_frames == len(logged), name


def test_gif_frames_are_bounded_in_number_and_size():
    assert spaced_steps([5, 0, 10]) == [0, 5, 10]
    thinned = spaced_steps(list(range(1001)), most=100)
    assert len(thinned) == 100 and thinned[0] == 0 and thinned[-1] == 1000 and thinned == sorted(set(thinned))
    frame = gif_frame(np.zeros((4000, 1000, 3), np.uint8), 7)
    assert frame.shape == (GIF_MAX_SIDE + CAPTION_PX, GIF_MAX_SIDE // 4, 3)
    same = np.zeros((128, 128, 3), np.uint8)
    assert not np.array_equal(gif_frame(same, 1), gif_frame(same, 2))  # PIL would merge equal frames


def make_grid_reference(images: torch.Tensor, max_tile: int | None) -> np.ndarray:
    """The grid as torchvision draws it: upscaled in float, then made uint8."""
    if max_tile and images.shape[-1] > max_tile:
        images = F.interpolate(images, size=(max_tile, max_tile), mode="area")
    scale = max(1, MIN_TILE // images.shape[-1])
    if scale > 1:
        images = F.interpolate(images, scale_factor=scale, mode="nearest")
    grid = torchvision.utils.make_grid(images, nrow=min(8, len(images)), padding=2 * scale, pad_value=0.5)
    return (grid.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


@pytest.mark.parametrize("count", [1, 5, 8, 9, 16])
@pytest.mark.parametrize("channels, side", [(3, 64), (3, 50), (1, 32), (3, 300), (3, 128)])
@pytest.mark.parametrize("max_tile", [MAX_TILE, None])
def test_image_grids_have_torchvisions_pixels(count, channels, side, max_tile):
    images = torch.rand(count, channels, side, side, generator=torch.Generator().manual_seed(count)) * 1.2 - 0.1
    images[0, 0, :2, :2] = torch.tensor([[0.5, 1.5 / 255], [2.5 / 255, 0.0]])  # halves round to even
    np.testing.assert_array_equal(image_grid(images, max_tile=max_tile), make_grid_reference(images, max_tile))
