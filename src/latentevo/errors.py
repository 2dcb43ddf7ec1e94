"""User-facing errors: each carries one line that says what is wrong and what to do."""


class LatentevoError(Exception):
    """An error the user can act on; entry points print its message alone and exit non-zero."""


class ConfigError(LatentevoError):
    """A configuration value that cannot work (unknown name, impossible size, bad prompt)."""


class WeightsError(LatentevoError):
    """Model weights that are missing, corrupt or do not fit the architecture."""
