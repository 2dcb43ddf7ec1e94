"""The one error discipline of every entry point (run.py, train.py, pixel_ga.py, `python -m
analysis`, ...): a user's mistake is one `error:` line on stderr and exit 1, Ctrl-C exit 130,
SIGTERM 143. Runs end FAILED or KILLED on their own (`tracking.tracked_run`) before it reaches here."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import NoReturn, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException, ValidationError

from .errors import LatentevoError, storage_error

T = TypeVar("T")


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


def user_error(err: BaseException) -> str | None:
    """The one line of an error the user can act on; None for a bug, whose traceback is kept."""
    if isinstance(err, (LatentevoError, HydraException, OmegaConfBaseException)):
        return one_line(err)
    if isinstance(err, ValueError) and _raised_by_hydra(err):
        hint = "; to leave a config group out, write ~group" if "Got NoneType" in str(err) else ""
        return f"{one_line(err)}{hint}"
    if isinstance(err, OSError):  # a full disk, or Hydra cannot create its output directory
        return str(storage_error(err))
    return None


def fail(line: str) -> NoReturn:
    print(f"error: {line}", file=sys.stderr)
    sys.exit(1)


def run_task(task: Callable[[DictConfig], T], cfg: DictConfig) -> T:
    """Runs a Hydra task (inside `hydra.main`). A single run's user error is its one line and
    exit 1 here, before Hydra's own report of a failed job; in a sweep it fails this job alone:
    the launcher records it, the other jobs run, and the sweeper raises the first failure at the
    end, which `exit_on_error` reports."""
    try:
        return task(cfg)
    except Exception as err:
        line = user_error(err)
        if line is None or HydraConfig.get().mode != RunMode.RUN:
            raise
        fail(line)


def exit_on_error(main: Callable[[], object]) -> None:
    """Runs an entry point's `main`: Hydra's errors before any job, a sweep's failed job, an
    analysis's error."""
    # Let exceptions reach this function instead of Hydra's multi-line report.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    terminate_as_interrupt()
    try:
        check_encoding(sys.argv[1:])
        main()
    except Terminated:
        print("terminated", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:
        line = user_error(err)
        if line is None:
            raise
        fail(line)


class UsageError(LatentevoError):
    """A command line that argparse cannot parse."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose mistakes are a UsageError (one line, via `exit_on_error`) rather
    than its usage text and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")
