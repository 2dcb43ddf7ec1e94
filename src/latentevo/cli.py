"""Entry-point error handling: a user's mistake is one line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import sys
from typing import Callable

from hydra.errors import HydraException, MissingConfigException
from omegaconf.errors import OmegaConfBaseException

from .errors import LatentevoError


def one_line(err: BaseException) -> str:
    """Hydra's config errors span several lines (e.g. the list of available options)."""
    if isinstance(err, MissingConfigException) and err.options:
        first = str(err).strip().splitlines()[0]
        return f"{first}; available: {', '.join(err.options)}"
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return " ".join(lines) or type(err).__name__


def exit_on_error(hydra_main: Callable[[], object]) -> None:
    # Let exceptions reach this function instead of Hydra's multi-line report.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        hydra_main()
    except (LatentevoError, HydraException, OmegaConfBaseException) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
