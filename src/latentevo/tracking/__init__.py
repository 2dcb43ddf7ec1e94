"""MLflow tracking: where the store is, and the lifecycle of one tracked run.

This layer knows MLflow and nothing about search or models: it is handed parameters, tags,
metrics per step, images and arrays.
"""

from .provenance import provenance_tags
from .run import RunLogger, TrackingLost, tracked_run
from .store import TrackingError, default_tracking_uri, open_experiment, tracking_uri

__all__ = ["RunLogger", "provenance_tags", "TrackingError", "TrackingLost", "default_tracking_uri", "open_experiment",
           "tracked_run", "tracking_uri"]
