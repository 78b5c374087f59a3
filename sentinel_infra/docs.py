"""The README's config reference, generated from the settings schema so that the two cannot disagree."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .settings import NAMESPACE, SERVICE_NAMES, HostPorts, LimitsOverride, Settings, example_of, is_secret


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    if info.default is None:
        return "unset"
    if isinstance(info.default, BaseModel | dict):
        return "see below"
    return f"`{str(info.default).lower() if isinstance(info.default, bool) else info.default}`"


def _rows(prefix: str, model: type[BaseModel]) -> list[str]:
    rows = []
    for info in model.model_fields.values():
        secret = "yes" if is_secret(info) else "no"
        structured = isinstance(info.default, BaseModel | dict)
        example = "see below" if structured else f"`{example_of(info)}`"
        rows.append(f"| `{prefix}{info.alias}` | {secret} | {_default(info)} | {info.description} | {example} |")
    return rows


def config_reference() -> str:
    """A Markdown table of every `sentineliq:` key."""
    header = ["| key | secret | default | meaning and rule | example |", "|---|---|---|---|---|"]
    return "\n".join(
        [
            *header,
            *_rows(f"{NAMESPACE}:", Settings),
            *_rows(f"{NAMESPACE}:hostPorts.", HostPorts),
            *_rows(f"{NAMESPACE}:resources.<service>.", LimitsOverride),
            "",
            f"`<service>` is one of {', '.join(f'`{name}`' for name in SERVICE_NAMES)}; "
            "a limit left out keeps the service's default.",
        ]
    )
