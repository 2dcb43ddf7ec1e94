"""Entry-point error handling: a user's mistake is one line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable

from hydra.errors import HydraException, MissingConfigException
from omegaconf.errors import OmegaConfBaseException, ValidationError

from .errors import LatentevoError, storage_error


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: the run in progress is marked KILLED, what it logged kept."""


def _raise_terminated(signum, frame):
    raise Terminated()


def terminate_as_interrupt() -> None:
    """Turn SIGTERM (a scheduler's or `kill`'s stop) into `Terminated` in this process."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


def one_line(err: BaseException) -> str:
    """Hydra's config errors span several lines (e.g. the list of available options), and a
    value of the wrong type for the schema says which key only in its cause."""
    if isinstance(err, MissingConfigException) and err.options:
        first = str(err).strip().splitlines()[0]
        return f"{first}; available: {', '.join(err.options)}"
    if isinstance(err.__cause__, ValidationError) and err.__cause__.full_key:
        return f"{err.__cause__.full_key}: {str(err.__cause__.msg).strip().splitlines()[0]}"
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return " ".join(lines) or type(err).__name__


def check_encoding(argv: list[str]) -> None:
    """Python passes bytes that are not UTF-8 on as lone surrogates, which Hydra's override
    parser rejects with a lexer error that does not say why."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            raise LatentevoError(f"argument '{shown}' is not valid UTF-8 text; retype it, or set the terminal "
                                 "to UTF-8 (e.g. LANG=C.UTF-8)") from None


def _raised_by_hydra(err: BaseException) -> bool:
    """Hydra's override parser raises plain ValueErrors for some bad overrides (`group=null`)."""
    frames = traceback.extract_tb(err.__traceback__)
    return bool(frames) and f"{os.sep}hydra{os.sep}" in frames[-1].filename


def exit_on_error(hydra_main: Callable[[], object]) -> None:
    # Let exceptions reach this function instead of Hydra's multi-line report.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    terminate_as_interrupt()
    try:
        check_encoding(sys.argv[1:])
        hydra_main()
    except (LatentevoError, HydraException, OmegaConfBaseException) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(1)
    except ValueError as err:
        if not _raised_by_hydra(err):
            raise
        hint = "; to leave a config group out, write ~group" if "Got NoneType" in str(err) else ""
        print(f"error: {one_line(err)}{hint}", file=sys.stderr)
        sys.exit(1)
    except OSError as err:  # e.g. Hydra cannot create its output directory
        print(f"error: {storage_error(err)}", file=sys.stderr)
        sys.exit(1)
    except Terminated:
        print("terminated", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
