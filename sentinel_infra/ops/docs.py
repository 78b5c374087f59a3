"""The README's config reference, generated from the settings schema so that the two cannot disagree."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ..settings import NAMESPACE, SERVICE_NAMES, Settings, example_of, is_secret, nested_model


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    if info.default is None:
        return "unset"
    if isinstance(info.default, bool):
        return f"`{str(info.default).lower()}`"
    return f"`{info.default}`"


def _row(key: str, info: FieldInfo) -> str:
    secret = "yes" if is_secret(info) else "no"
    return f"| `{key}` | {secret} | {_default(info)} | {info.description} | `{example_of(info)}` |"


def _rows(model: type[BaseModel], prefix: str = f"{NAMESPACE}:") -> list[str]:
    rows = []
    for info in model.model_fields.values():
        nested = nested_model(info)
        if nested is None:
            rows.append(_row(f"{prefix}{info.alias}", info))
            continue
        # A map of objects (`resources`) is keyed by service; an object by its own fields, at any depth
        # (`kubernetes.volumeSizes.postgresData`).
        rows.extend(_rows(nested, f"{prefix}{info.alias}." + ("<service>." if isinstance(info.default, dict) else "")))
    return rows


def config_reference() -> str:
    """A Markdown table of every `sentineliq:` key."""
    header = ["| key | secret | default | meaning and rule | example |", "|---|---|---|---|---|"]
    return "\n".join(
        [
            *header,
            *_rows(Settings),
            "",
            f"`<service>` is one of {', '.join(f'`{name}`' for name in SERVICE_NAMES)}; "
            "a limit left out keeps the service's default. Structured keys are set with `--path`.",
        ]
    )
