"""Weight files: where the shapes-world models live, writing them, checksums, and safe loading."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import WeightsError
from ..identity import reads_weights

WORLD_DIR = Path(__file__).resolve().parent.parent / "assets" / "world"
MANIFEST = "MANIFEST.sha256"
REBUILD_HINT = "run `make world` to rebuild the shapes-world models"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_weights(path: Path, state: dict[str, torch.Tensor], config: dict | None = None, half: bool = False) -> None:
    """Weights (float16 with `half`: half the size; they run in float32 after loading) renamed
    into place, and the JSON config that rebuilds their network beside them (`<name>.json`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in state.items()}
    partial = path.with_name(path.name + ".partial")
    save_file(state, str(partial))
    partial.replace(path)
    if config is not None:
        path.with_suffix(".json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def roundtrip(model: torch.nn.Module) -> torch.nn.Module:
    """The model as it will be after saving in float16 and loading, so that the numbers
    reported are those of the saved weights."""
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            t.data = t.data.half().float()
    return model


def read_manifest(directory: Path) -> dict[str, str]:
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return {}
    entries = (line.split() for line in manifest.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in entries}


def write_manifest(directory: Path) -> None:
    """Record the sha256 of every weight and config file in the directory."""
    files = sorted(p for p in directory.iterdir() if p.suffix in {".safetensors", ".json"})
    lines = [f"{sha256(p)}  {p.name}" for p in files]
    (directory / MANIFEST).write_text("\n".join(lines) + "\n")


def world_files(name: str, directory: str | Path = WORLD_DIR) -> list[Path]:
    """World model `name`'s weights and config files."""
    return [Path(directory) / f"{name}.safetensors", Path(directory) / f"{name}.json"]


def reads_world_model(name: str):
    """Marks a builder taking `random_init` (and `weights_dir`) as reading world model `name`."""

    def files(random_init: bool = False, weights_dir: str | Path = WORLD_DIR, **_) -> list[Path]:
        return [] if random_init else world_files(name, weights_dir)

    return reads_weights(files)


def verified_path(name: str, directory: Path = WORLD_DIR) -> Path:
    """Path of a world model file after checking it exists and matches the manifest."""
    path = directory / name
    if not path.is_file():
        raise WeightsError(f"missing weights file {path}; {REBUILD_HINT}")
    expected = read_manifest(directory).get(name)
    if expected is None:
        raise WeightsError(f"{path} is not listed in {directory / MANIFEST}; {REBUILD_HINT}")
    if sha256(path) != expected:
        raise WeightsError(f"checksum mismatch for {path} (corrupt or modified); {REBUILD_HINT}")
    return path


def load_world_model(name: str, directory: Path = WORLD_DIR) -> tuple[dict[str, torch.Tensor], dict]:
    """State dict (float32) and JSON config of a verified world model `<name>.safetensors/.json`."""
    weights, config_file = (verified_path(path.name, directory) for path in world_files(name, directory))
    config = json.loads(config_file.read_text())
    try:
        state = load_file(weights)
    except (SafetensorError, OSError) as err:
        raise WeightsError(f"cannot read {weights}: {err}; {REBUILD_HINT}") from err
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, config


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: Path | str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise WeightsError(f"weights in {source} do not fit the model: {first}; {REBUILD_HINT}") from err
