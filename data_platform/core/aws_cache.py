"""The on-disk cache of temporary AWS credentials: one JSON file per identity, 0600 in a 0700
folder, written atomically so a secret is never readable by others, even for an instant."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from data_platform.core.files import write_atomically
from data_platform.core.paths import cache_dir

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "DATA_PLATFORM_AWS_CACHE_DIR"


@dataclass(frozen=True)
class TemporaryCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime

    def time_left(self, now: datetime) -> timedelta:
        return self.expiration - now

    def as_refresh_metadata(self) -> dict[str, str]:
        return {
            "access_key": self.access_key_id,
            "secret_key": self.secret_access_key,
            "token": self.session_token,
            "expiry_time": self.expiration.isoformat(),
        }


def credentials_from_sts(credentials: dict[str, Any]) -> TemporaryCredentials:
    expiration = credentials["Expiration"]
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=UTC)
    return TemporaryCredentials(
        access_key_id=credentials["AccessKeyId"],
        secret_access_key=credentials["SecretAccessKey"],
        session_token=credentials["SessionToken"],
        expiration=expiration,
    )


def cache_dir_for(configured: str | None) -> Path:
    """`configured`, else DATA_PLATFORM_AWS_CACHE_DIR (read now), else the platform cache."""
    configured = configured or os.environ.get(CACHE_DIR_ENV)
    return Path(configured).expanduser() if configured else cache_dir("aws")


class CredentialCache:
    """One JSON file per identity; written atomically, readable by the owner only."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def key(self, kind: str, identity: list[str | None]) -> Path:
        digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]
        return self.directory / f"{kind}-{digest}.json"

    def read(self, path: Path) -> TemporaryCredentials | None:
        try:
            data = json.loads(path.read_text())
            return TemporaryCredentials(
                access_key_id=data["access_key_id"],
                secret_access_key=data["secret_access_key"],
                session_token=data["session_token"],
                expiration=datetime.fromisoformat(data["expiration"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("Ignoring unreadable credential cache %s (%s)", path, type(exc).__name__)
            return None

    def write(
        self, path: Path, credentials: TemporaryCredentials, about: dict[str, str | None]
    ) -> None:
        self._ensure_private_directory()
        payload = {
            **about,
            "access_key_id": credentials.access_key_id,
            "secret_access_key": credentials.secret_access_key,
            "session_token": credentials.session_token,
            "expiration": credentials.expiration.isoformat(),
        }
        # The temporary file is created 0600, so the secret is never readable by others.
        write_atomically(path, json.dumps(payload).encode())

    def _ensure_private_directory(self) -> None:
        if not self.directory.exists():
            self.directory.mkdir(parents=True, mode=0o700, exist_ok=True)
            os.chmod(self.directory, 0o700)
        elif self.directory.stat().st_mode & 0o077:
            # Not ours to chmod (it may be shared); the files themselves stay 0600.
            logger.warning(
                "Credential cache directory %s is accessible by other users; "
                "consider `chmod 700 %s`.",
                self.directory,
                self.directory,
            )
