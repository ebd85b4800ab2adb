"""Training-sample store (seed 001): JSONL samples on a local folder or S3, PII scrubbing,
stats without reading bodies, export, validation and bucket bootstrap.

Plain Python; `cli.py` adds `data-platform training ...`, `defs.py` the Dagster assets.
"""

from data_platform.training.backends import (
    LocalStorageBackend,
    S3StorageBackend,
    SampleStore,
    backend_from_env,
)
from data_platform.training.errors import PiiError, TrainingError

__all__ = [
    "LocalStorageBackend",
    "PiiError",
    "S3StorageBackend",
    "SampleStore",
    "TrainingError",
    "backend_from_env",
]
