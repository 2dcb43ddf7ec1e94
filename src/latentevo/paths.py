"""The project directory, and paths in configs relative to it."""

from __future__ import annotations

from pathlib import Path

# An editable install lives in its checkout; otherwise the project is the working directory.
_CHECKOUT = Path(__file__).resolve().parents[2]
PROJECT_DIR = _CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else Path.cwd()


def resolve(path: str | Path) -> Path:
    """Relative paths are relative to the project directory, wherever Hydra runs the job."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_DIR / path
