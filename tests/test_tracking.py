"""The tracking layer against a real SQLite MLflow store."""

import numpy as np
import pytest
from mlflow.entities import ViewType
from PIL import Image

from latentevo.paths import PROJECT_DIR
from latentevo.tracking import TrackingError, default_tracking_uri, open_experiment, tracked_run
from latentevo.tracking import run as tracking_run


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store")
    return path, f"sqlite:///{path / 'mlflow.db'}"


def test_default_store_is_in_the_project_directory():
    assert default_tracking_uri() == f"sqlite:///{PROJECT_DIR / 'mlflow.db'}"
    assert (PROJECT_DIR / "pyproject.toml").is_file()


def test_experiment_is_created_once_with_artifacts_beside_the_database(store):
    path, uri = store
    client, first = open_experiment("exp one", uri)
    _, again = open_experiment("exp one", uri)
    assert first == again
    location = client.get_experiment(first).artifact_location
    assert location == (path / "mlartifacts" / "exp_one").as_uri()


def test_finished_run_has_batched_metrics_params_tags_and_artifacts(store):
    path, uri = store
    client, exp = open_experiment("lifecycle", uri)
    with tracked_run(client, exp, "algo=ga,seed=1", {"device": "cpu"}) as run:
        run.log_params({"pop_size": 16, "algo._target_": "GA"}, {"git_sha": "abc"})
        for step in range(25):
            run.log_metrics(step, {"best": step / 10, "mean": step / 20})
        run.log_image(np.zeros((8, 16, 3), np.uint8), "population/gen_0000.png")
        run.log_arrays("population.npz", latents=np.ones((4, 3)))
        location = run.artifact_location("population.npz")
    info = client.get_run(run.run_id)
    assert info.info.status == "FINISHED" and info.info.run_name == "algo=ga,seed=1"
    assert info.data.params == {"pop_size": "16", "algo._target_": "GA"}
    assert info.data.tags["git_sha"] == "abc" and info.data.tags["device"] == "cpu"
    history = client.get_metric_history(run.run_id, "best")
    assert [m.step for m in history] == list(range(25))
    assert np.load(location)["latents"].shape == (4, 3)
    assert {a.path for a in client.list_artifacts(run.run_id)} >= {"population", "population.npz"}


@pytest.mark.parametrize("error, status", [(ValueError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED")])
def test_a_crash_ends_the_run_and_keeps_its_metrics(store, error, status):
    _, uri = store
    client, exp = open_experiment("crashes", uri)
    with pytest.raises(type(error)):
        with tracked_run(client, exp, "crash") as run:
            run.log_metrics(0, {"best": 1.0})
            raise error
    assert client.get_run(run.run_id).info.status == status
    assert [m.value for m in client.get_metric_history(run.run_id, "best")] == [1.0]
    running = client.search_runs([exp], "attributes.status = 'RUNNING'", run_view_type=ViewType.ALL)
    assert running == []


def test_unreachable_stores_fail_fast_with_one_line(tmp_path):
    with pytest.raises(TrackingError, match="cannot reach MLflow tracking server"):
        open_experiment("x", "http://127.0.0.1:9")
    with pytest.raises(TrackingError, match="does not exist"):
        open_experiment("x", f"sqlite:///{tmp_path / 'missing' / 'mlflow.db'}")


def test_a_point_handed_back_unsent_and_logged_again_is_stored_once(store):
    """A resumed run replaying its generations logs points its checkpoint also handed back unsent."""
    _, uri = store
    client, exp = open_experiment("once", uri)
    with tracked_run(client, exp, "replayed") as run:
        run.flush_every_s = 3600
        run.log_points([("best", 0.5, 1, 0), ("best", 0.6, 2, 1)])  # from the checkpoint, not yet sent
        run.log_metrics(0, {"best": 0.5})  # the replay of generations 0 and 1
        run.log_metrics(1, {"best": 0.6})
        run.log_metrics(2, {"best": 0.7})
    assert sorted((m.step, m.value) for m in client.get_metric_history(run.run_id, "best")) == [
        (0, 0.5), (1, 0.6), (2, 0.7)
    ]


def test_a_runs_first_metrics_go_out_at_once_and_the_later_ones_at_its_interval(store, monkeypatch):
    _, uri = store
    client, exp = open_experiment("first flush", uri)
    monkeypatch.setattr(tracking_run, "FIRST_FLUSH_S", 0.0)
    stored = []
    with tracked_run(client, exp, "early") as run:
        run.flush_every_s = 3600  # a pack's interval: many runs share the store's time
        for step in range(3):
            run.log_metrics(step, {"best": 0.1 * step})
            stored.append([m.step for m in client.get_metric_history(run.run_id, "best")])
    assert stored == [[0], [0], [0]]
    assert [m.step for m in client.get_metric_history(run.run_id, "best")] == [0, 1, 2]  # the rest at the end


def test_image_artifacts_are_pngs_of_the_very_pixels_at_their_path(store, tmp_path, monkeypatch):
    """A run started here lists and reads back what it wrote from memory (the PNGs while they fit
    its budget): the same paths and pixels as the store's; a resumed run asks the store."""
    _, uri = store
    client, exp = open_experiment("pngs", uri)
    image = np.random.default_rng(0).integers(0, 256, (20, 36, 3), dtype=np.uint8)
    image[:, :12] = 7  # flat runs, as grids have, and noise
    monkeypatch.setattr(tracking_run, "KEPT_PNG_BYTES", len(tracking_run.png_bytes(image)) + 1)  # one PNG kept
    paths = ["population/gen_0003.png", "best.png"]
    with tracked_run(client, exp, "pngs") as run:
        for path in paths:
            run.log_image(image, path)
        run.log_text("a: 1", "config.yaml")
        listings = [run.artifact_paths(folder) for folder in ("population", "")]
        assert listings == [["population/gen_0003.png"], ["best.png", "config.yaml"]]
        assert listings == [[a.path for a in client.list_artifacts(run.run_id, folder) if not a.is_dir]
                            for folder in ("population", "")]
        for path in paths:
            assert np.array_equal(run.read_image(path), image)
            stored = np.asarray(Image.open(client.download_artifacts(run.run_id, path, str(tmp_path))))
            assert np.array_equal(stored, image)
    with tracked_run(client, exp, "pngs", resume_run_id=run.run_id) as resumed:
        assert resumed.artifact_paths("population") == ["population/gen_0003.png"]
        assert np.array_equal(resumed.read_image("best.png"), image)


def test_a_time_stepped_image_is_logged_once_per_step_even_by_a_resumed_run(store):
    _, uri = store
    client, exp = open_experiment("stepped", uri)
    image = np.full((8, 8, 3), 200, np.uint8)
    with tracked_run(client, exp, "stepped") as run:
        run.log_stepped_image(image, "best", 0)
        run.log_stepped_image(image, "best", 0)
        run.log_stepped_image(image, "best", 5)
    with tracked_run(client, exp, "stepped", resume_run_id=run.run_id) as resumed:
        resumed.log_stepped_image(image, "best", 5)  # replayed
        resumed.log_stepped_image(image, "best", 10)
        assert sorted(resumed.stepped_images("best")) == [0, 5, 10]
        assert np.array_equal(resumed.read_image(resumed.stepped_images("best")[10]), image)
    pngs = [a.path for a in client.list_artifacts(run.run_id, "images") if a.path.endswith(".png")]
    assert len(pngs) == 3 and all("best+step+" in p for p in pngs)


def test_experiments_open_on_the_runs_table_in_mlflow_3(store):
    """MLflow 3's UI opens an experiment without the kind tag on a GenAI overview."""
    _, uri = store
    client, exp = open_experiment("kind new", uri)
    assert client.get_experiment(exp).tags["mlflow.experimentKind"] == "custom_model_development"
    older = client.create_experiment("kind older")  # as a store made before the tag has it
    assert "mlflow.experimentKind" not in client.get_experiment(older).tags
    _, same = open_experiment("kind older", uri)
    assert same == older
    assert client.get_experiment(older).tags["mlflow.experimentKind"] == "custom_model_development"
    client.set_experiment_tag(older, "mlflow.experimentKind", "genai_development")  # a user's own choice stays
    open_experiment("kind older", uri)
    assert client.get_experiment(older).tags["mlflow.experimentKind"] == "genai_development"
