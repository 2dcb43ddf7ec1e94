"""One tracked MLflow run: start or resume, batched metrics, artifacts, and an end state that is
never left RUNNING while the store can be reached (FINISHED, FAILED on an exception, KILLED on
Ctrl-C or SIGTERM)."""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking.multimedia import compress_image_size
from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_IMAGES
from PIL import Image
from sqlalchemy.exc import SQLAlchemyError

from .store import TrackingError

# log_batch accepts at most 1000 metrics and 100 params per call.
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
#: a metric point as checkpoints keep it: key, value, timestamp (ms), step
MetricPoint = tuple[str, float, int, int]
#: where MlflowClient.log_image(key=, step=) puts a time-stepped image (beside a +compressed.webp
#: preview): the run page's image chart, with a step slider, shows them
STEPPED_IMAGE_DIR = "images"
STEPPED_IMAGE = re.compile(r"images/(?P<key>[^/]+)\+step\+(?P<step>\d+)\+timestamp\+\d+\+[0-9a-f-]+\.png")
#: bytes of the PNGs a logger keeps in memory, for the GIFs to read back without the store
KEPT_PNG_BYTES = 4 << 20
#: PNG artifacts are run-length encoded: the grids' flat colours make files as small as zlib's
#: default strategy does, in about half its time
PNG_OPTIONS = {"compress_type": zlib.Z_RLE}


class TrackingLost(TrackingError):
    """The store stopped answering during a run (MLflow's client has retried with backoff)."""


@contextlib.contextmanager
def _store_call(client: MlflowClient, what: str) -> Iterator[None]:
    try:
        yield
    except (MlflowException, requests.RequestException, SQLAlchemyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TrackingLost(f"lost the MLflow tracking store {client.tracking_uri} while {what} ({first[:300]}); "
                           "once it is back, run the same command again to resume") from err


#: seconds before a run's first batch of metrics goes out, whatever its later interval: its
#: curves appear in the UI at once, and a pack's later, longer intervals keep its store calls few
FIRST_FLUSH_S = 2.0


class RunLogger:
    """Logs into one run; metrics are buffered and sent in batches."""

    def __init__(self, client: MlflowClient, run_id: str, flush_every_s: float = 2.0,
                 logged: set[tuple[str, int]] | None = None, logged_images: set[tuple[str, int]] | None = None,
                 started_here: bool = False):
        self.client, self.run_id, self.flush_every_s = client, run_id, flush_every_s
        self._metrics: list[Metric] = []
        self._last_flush = time.monotonic()
        # (key, step) already in the store, or waiting to be sent: a resumed run (whose checkpoint
        # hands back its unsent metrics, and which may replay generations) logs each point once
        self._logged = logged or set()
        self._queued: set[tuple[str, int]] = set()
        self._logged_images = logged_images or set()  # (key, step) of time-stepped images, likewise
        # every artifact path this logger wrote, with its PNG's bytes while they fit KEPT_PNG_BYTES:
        # a run started here holds no others, so listing and reading it back need no store call
        self.started_here = started_here
        self._written: dict[str, bytes | None] = {}
        self._kept_bytes = 0
        self._artifact_uri: str | None = None
        self._repository: ArtifactRepository | None = None

    @property
    def artifact_uri(self) -> str:
        if self._artifact_uri is None:
            with _store_call(self.client, "looking up the run's artifacts"):
                self._artifact_uri = self.client.get_run(self.run_id).info.artifact_uri
        return self._artifact_uri

    @property
    def _artifacts(self) -> ArtifactRepository:
        """The run's artifact repository, resolved once: the client's own listing and download
        calls look the run up in the store every time (two queries a file)."""
        if self._repository is None:
            self._repository = get_artifact_repository(self.artifact_uri, tracking_uri=self.client.tracking_uri)
        return self._repository

    def log_params(self, params: Mapping[str, object], tags: Mapping[str, str] | None = None) -> None:
        entries = [Param(k, str(v)) for k, v in params.items()]
        for start in range(0, len(entries), MAX_BATCH_PARAMS):
            self.client.log_batch(self.run_id, params=entries[start : start + MAX_BATCH_PARAMS])
        if tags:
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        self.log_points([(k, float(v), now, step) for k, v in metrics.items()])

    def log_points(self, points: list[MetricPoint]) -> None:
        new = [Metric(k, v, t, s) for k, v, t, s in points if (k, s) not in self._logged and (k, s) not in self._queued]
        self._queued |= {(m.key, m.step) for m in new}
        self._metrics += new
        interval = self.flush_every_s if self._logged else min(self.flush_every_s, FIRST_FLUSH_S)
        if len(self._metrics) >= MAX_BATCH_METRICS or time.monotonic() - self._last_flush > interval:
            self.flush()

    def pending(self) -> list[MetricPoint]:
        """Metrics logged but not yet sent to the store."""
        return [(m.key, m.value, m.timestamp, m.step) for m in self._metrics]

    def flush(self) -> None:
        """Sends the buffered metrics; what a failed call did not send stays buffered."""
        with _store_call(self.client, "sending metrics"):
            while self._metrics:
                batch = self._metrics[:MAX_BATCH_METRICS]
                self.client.log_batch(self.run_id, metrics=batch)
                sent = {(m.key, m.step) for m in batch}
                self._logged |= sent
                self._queued -= sent
                del self._metrics[: len(batch)]
        self._last_flush = time.monotonic()

    def log_image(self, image: np.ndarray, artifact_file: str) -> None:
        """(H, W, 3) uint8 image as a PNG artifact, `artifact_file` (a path in the run's artifacts)."""
        folder, _, name = artifact_file.rpartition("/")
        data = png_bytes(image)
        self._upload({name: data}, folder, f"logging {artifact_file}")
        self._keep(artifact_file, data)

    def log_stepped_image(self, image: np.ndarray, key: str, step: int) -> None:
        """(H, W, 3) uint8 image at `step` of the run's image chart `key`, once per step. The files
        and tag are MlflowClient.log_image(key=, step=)'s, written here: MLflow's own sets the tag
        again at every call and uploads each file on its own (13 ms an image against 7 here)."""
        if (key, step) in self._logged_images:
            return
        stem = f"{key.replace('/', '~')}+step+{step}+timestamp+{int(time.time() * 1000)}+{uuid.uuid4()}"
        data = png_bytes(image)
        self._upload({f"{stem}.png": data, f"{stem}+compressed.webp": webp_preview(image)}, STEPPED_IMAGE_DIR,
                     f"logging image {key} of step {step}")
        self._keep(f"{STEPPED_IMAGE_DIR}/{stem}.png", data)
        if not self._logged_images:  # the run's first: the tag makes its page show the image chart
            with _store_call(self.client, "tagging the run's images"):
                self.client.set_tag(self.run_id, MLFLOW_LOGGED_IMAGES, "True")
        self._logged_images.add((key, step))

    def _upload(self, files: Mapping[str, bytes], folder: str, what: str) -> None:
        """Files (name: bytes) into an artifact folder of the run ('' for its root)."""
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                (Path(tmp) / name).write_bytes(data)
            with _store_call(self.client, what):
                self._artifacts.log_artifacts(tmp, folder or None)
        for name in files:
            self._written.setdefault(f"{folder}/{name}" if folder else name, None)

    def _keep(self, artifact_path: str, data: bytes) -> None:
        if self._kept_bytes + len(data) <= KEPT_PNG_BYTES:
            self._written[artifact_path] = data
            self._kept_bytes += len(data)

    def log_file(self, path: Path, folder: str) -> None:
        """A local file (weights: not read into memory) as an artifact in `folder`."""
        with _store_call(self.client, f"logging {path.name}"):
            self._artifacts.log_artifact(str(path), folder)
        self._written.setdefault(f"{folder}/{path.name}", None)

    def stepped_images(self, key: str) -> dict[int, str]:
        """Artifact path of each step's image of chart `key` in the store."""
        return {step: path for (k, step), path in stepped_paths(self._listing(STEPPED_IMAGE_DIR)).items() if k == key}

    def artifact_paths(self, folder: str) -> list[str]:
        """Paths of the files in an artifact folder of the run."""
        return self._listing(folder)

    def _listing(self, folder: str) -> list[str]:
        if self.started_here:
            return sorted(path for path in self._written if path.rpartition("/")[0] == folder)
        with _store_call(self.client, f"listing {folder}"):
            return [a.path for a in self._artifacts.list_artifacts(folder) if not a.is_dir]

    def read_image(self, artifact_path: str) -> np.ndarray:
        """An image artifact as an (H, W, 3) uint8 array."""
        if kept := self._written.get(artifact_path):
            with Image.open(io.BytesIO(kept)) as image:
                return np.asarray(image.convert("RGB"))
        with tempfile.TemporaryDirectory() as tmp, _store_call(self.client, f"reading {artifact_path}"):
            with Image.open(self._artifacts.download_artifacts(artifact_path, tmp)) as image:
                return np.asarray(image.convert("RGB"))

    def log_gif(self, frames: list[np.ndarray], name: str, frame_ms: int) -> None:
        """(H, W, 3) uint8 frames as an animated GIF artifact, `name`, at the artifact root, looping."""
        # PIL's fast octree palette: a sixth of the time of its default (median cut) on population
        # grids, within 1-2 levels of the frame's pixels on average
        images = [Image.fromarray(frame).quantize(256, method=Image.Quantize.FASTOCTREE) for frame in frames]
        data = io.BytesIO()
        images[0].save(data, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
        self._upload({name: data.getvalue()}, "", f"logging {name}")

    def log_text(self, text: str, artifact_file: str) -> None:
        folder, _, name = artifact_file.rpartition("/")
        self._upload({name: text.encode()}, folder, f"logging {artifact_file}")

    def log_arrays(self, name: str, **arrays: np.ndarray) -> None:
        """Arrays in one compressed .npz artifact, `name`, at the artifact root."""
        data = io.BytesIO()
        np.savez_compressed(data, **arrays)
        self._upload({name: data.getvalue()}, "", f"logging {name}")

    def artifact_location(self, artifact_file: str) -> str:
        """A local path for artifacts in a local store, else the artifact URI."""
        uri = f"{self.artifact_uri}/{artifact_file}"
        parsed = urlparse(uri)
        return unquote(parsed.path) if parsed.scheme in ("", "file") else uri


def logged_points(client: MlflowClient, run_id: str) -> set[tuple[str, int]]:
    """(key, step) of every metric point the run has in the store."""
    keys = client.get_run(run_id).data.metrics
    return {(key, m.step) for key in keys for m in client.get_metric_history(run_id, key)}


def stepped_images(client: MlflowClient, run_id: str) -> dict[tuple[str, int], str]:
    """Artifact path of each (key, step) time-stepped image of the run (the first, should a step
    have two)."""
    return stepped_paths([a.path for a in client.list_artifacts(run_id, STEPPED_IMAGE_DIR)])


def stepped_paths(paths: list[str]) -> dict[tuple[str, int], str]:
    found: dict[tuple[str, int], str] = {}
    for path in sorted(paths):
        if match := STEPPED_IMAGE.fullmatch(path):
            found.setdefault((match["key"], int(match["step"])), path)
    return found


def png_bytes(image: np.ndarray) -> bytes:
    data = io.BytesIO()
    Image.fromarray(image).save(data, format="PNG", **PNG_OPTIONS)
    return data.getvalue()


def webp_preview(image: np.ndarray) -> bytes:
    """The WebP preview beside a time-stepped image, as MLflow's log_image makes it (the run
    page's chart shows it: 256 px on its longer side), encoded with WebP's fastest method (less
    than half the time of its default; a preview of a few hundred bytes either way)."""
    data = io.BytesIO()
    compress_image_size(Image.fromarray(image)).save(data, format="WEBP", method=0)
    return data.getvalue()


@contextlib.contextmanager
def tracked_run(
    client: MlflowClient,
    experiment_id: str,
    run_name: str,
    tags: Mapping[str, str] | None = None,
    resume_run_id: str | None = None,
) -> Iterator[RunLogger]:
    """A new run, or with `resume_run_id` that run set RUNNING again, its logged metrics kept."""
    if resume_run_id is None:
        run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
        logger = RunLogger(client, run.info.run_id, started_here=True)
    else:
        client.update_run(resume_run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        logger = RunLogger(client, resume_run_id, logged=logged_points(client, resume_run_id),
                           logged_images=set(stepped_images(client, resume_run_id)))
    status = RunStatus.FAILED
    try:
        yield logger
        logger.flush()
        status = RunStatus.FINISHED
    except KeyboardInterrupt:
        status = RunStatus.KILLED
        raise
    except TrackingLost:
        # Every further call to a lost server would be retried for minutes: the run stays RUNNING
        # there until it is resumed. A local store is still told, if it can be.
        status = None if urlparse(client.tracking_uri).scheme in ("http", "https") else RunStatus.FAILED
        raise
    finally:
        if status == RunStatus.FINISHED:
            client.set_terminated(logger.run_id, RunStatus.to_string(status))
        elif status is not None:
            # Keep what was measured before the failure; the failure itself is what matters.
            with contextlib.suppress(Exception):
                logger.flush()
            with contextlib.suppress(Exception):
                client.set_terminated(logger.run_id, RunStatus.to_string(status))
