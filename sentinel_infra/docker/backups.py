"""Where the backup jobs (`sentinel_infra.specs.backup`) write on Docker: a folder of the Docker host."""

from __future__ import annotations

from ..naming import StackNames
from ..settings import Settings
from ..specs.backup import BACKUPS
from .containers import HostDirectory


def backup_path(settings: Settings, names: StackNames) -> str:
    return settings.backup.path or f"/var/backups/{names.prefix}"


def backup_directory(settings: Settings, names: StackNames) -> HostDirectory:
    """The host folder every job writes its runs into."""
    return HostDirectory(backup_path(settings, names), BACKUPS)
