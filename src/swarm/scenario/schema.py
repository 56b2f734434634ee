"""The rules a scenario key carries, and the check that applies them.

Kept apart from the sections so that each workload can declare its own section with the
same rules (`rule`) without importing the scenario loader, which consults the workload
registry.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import Field, field
from typing import Any

from swarm import topics

__all__ = ["ScenarioError", "check", "did_you_mean", "rule", "show"]


class ScenarioError(ValueError):
    """A scenario that cannot run; the message is one line a user can act on."""


def rule(default: Any, doc: str, **checks: Any) -> Any:
    """A field with a default, a doc line and checks (min, max, above, choices, ...)."""
    factory: Callable[[], list[Any] | dict[Any, Any]] | None
    factory = (lambda: list(default)) if isinstance(default, list) else None
    factory = (lambda: dict(default)) if isinstance(default, dict) else factory
    meta = {"doc": doc, **checks}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, str(tp)
    )


_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "list[str]": list[str],
    "list[list[str]]": list[list[str]],
    "dict[str, float]": dict[str, float],
    "dict[str, str]": dict[str, str],
    "dict[str, list[float]]": dict[str, list[float]],
    "list[dict[str, Any]]": list[dict[str, Any]],
}


def check(path: str, value: Any, spec: Field[Any]) -> Any:
    """Return `value` converted to the field's type, or raise ScenarioError naming `path`."""
    tp = spec.type if not isinstance(spec.type, str) else _TYPES[spec.type]
    meta = spec.metadata
    shown = show(value)
    if tp is bool:
        if type(value) is not bool:
            raise ScenarioError(f"{path} = {shown}: expected true or false")
    elif tp is int:
        if type(value) is not int:
            raise ScenarioError(f"{path} = {shown}: expected an integer")
    elif tp is float:
        if type(value) not in (int, float) or not math.isfinite(value):
            raise ScenarioError(f"{path} = {shown}: expected a finite number")
        value = float(value)
    elif tp is str:
        if type(value) is not str:
            raise ScenarioError(f"{path} = {shown}: expected a string")
    elif tp == list[str]:
        if type(value) is not list or not all(type(v) is str for v in value):
            raise ScenarioError(f"{path} = {shown}: expected a list of strings")
    elif tp == list[list[str]]:
        ok = type(value) is list and all(
            type(group) is list and all(type(v) is str for v in group) for group in value
        )
        if not ok:
            raise ScenarioError(f"{path} = {shown}: expected a list of lists of strings")
    elif tp == list[dict[str, Any]]:
        if type(value) is not list or not all(type(v) is dict for v in value):
            raise ScenarioError(f"{path} = {shown}: expected a list of tables ([[{path}]])")
        value = [dict(v) for v in value]
    elif tp == dict[str, list[float]]:
        ok = type(value) is dict and all(
            type(v) is list and all(type(x) in (int, float) and math.isfinite(x) for x in v)
            for v in value.values()
        )
        if not ok:
            raise ScenarioError(f"{path} = {shown}: expected a table of name = [numbers]")
        value = {k: [float(x) for x in v] for k, v in value.items()}
    elif tp == dict[str, str]:
        if type(value) is not dict or not all(type(v) is str for v in value.values()):
            raise ScenarioError(f'{path} = {shown}: expected a table of name = "name"')
    elif tp == dict[str, float]:
        ok = type(value) is dict and all(
            type(v) in (int, float) and math.isfinite(v) for v in value.values()
        )
        if not ok:
            raise ScenarioError(f"{path} = {shown}: expected a table of name = number")
        value = {k: float(v) for k, v in value.items()}
    choices = meta.get("choices")
    if callable(choices):  # choices that grow with the registry (workloads, behaviours)
        choices = choices()
    if choices is not None and value not in choices:
        allowed = ", ".join(choices)
        raise ScenarioError(
            f"{path} = {shown}: allowed are {allowed}{did_you_mean(str(value), choices)}"
        )
    if "min" in meta and value < meta["min"]:
        raise ScenarioError(f"{path} = {shown}: must be >= {meta['min']}")
    if "max" in meta and value > meta["max"]:
        raise ScenarioError(f"{path} = {shown}: must be <= {meta['max']}")
    if "above" in meta and value <= meta["above"]:
        raise ScenarioError(f"{path} = {shown}: must be > {meta['above']}")
    if meta.get("segment"):
        for name in value if isinstance(value, list) else [value]:
            try:
                topics.validate_segment(path, name)
            except topics.TopicError as exc:
                raise ScenarioError(str(exc)) from None
    return value


def show(value: Any) -> str:
    text = repr(value) if not isinstance(value, bool) else str(value).lower()
    return text if len(text) <= 60 else text[:57] + "..."
