"""Where a run's code and packages came from: git state and package versions."""

from __future__ import annotations

import importlib.metadata
import subprocess
from functools import lru_cache

from ..paths import PROJECT_DIR

VERSIONED_PACKAGES = ("latentevo", "torch", "open_clip_torch", "pymoo", "hydra-core", "mlflow", "numpy")


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


@lru_cache(maxsize=1)
def provenance_tags() -> dict[str, str]:
    """Git state and package versions, once per process (sweeps reuse worker processes)."""
    sha = _git("rev-parse", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    tags = {"mlflow.source.git.commit": sha, "git_sha": sha, "git_dirty": str(bool(dirty)).lower()}
    for package in VERSIONED_PACKAGES:
        try:
            tags[f"version.{package}"] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            tags[f"version.{package}"] = "not installed"
    return tags
