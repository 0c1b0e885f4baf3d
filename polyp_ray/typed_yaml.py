"""YAML files to typed dataclasses: read a mapping, build a dataclass from it rejecting unknown keys and
wrong types, apply ``--set key=value`` overrides. Every error is one ConfigError line naming the file
(or ``--set``) and the dotted key."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from polyp_ray.errors import ConfigError

T = TypeVar("T")


class DuplicateKey(yaml.MarkedYAMLError):
    """A mapping that repeats a key: PyYAML would keep the last value without a word."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping repeating a key, at any depth."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            if first is not None:
                raise DuplicateKey(problem=f"key {key!r} appears twice: line {first} and line {line}",
                                   problem_mark=key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


# PyYAML reads YAML 1.1, where a float needs a dot: ``1e-3`` would be the string "1e-3" and a learning rate
# written as in Python, JSON or YAML 1.2 would be refused. Exponent floats without a dot are floats here.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"), list("-+0123456789"))


def load_unique(text: str) -> Any:
    """``yaml.safe_load`` that raises ``DuplicateKey`` for a repeated key instead of keeping the last."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file, a syntax error or a non-mapping is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        loaded = load_unique(path.read_text(encoding="utf-8"))
    except DuplicateKey as err:
        raise ConfigError(f"{path}: {err.problem}; remove one (YAML would keep the last silently)") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML: {getattr(err, 'problem', err)}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return loaded


def from_mapping(cls: type[T], data: dict[str, Any], where: str, prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and values of the wrong type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {prefix.rstrip('.') or 'top level'}: expected a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"{where}: {prefix}{key}: unknown key; known keys: {sorted(fields)}")
        values[key] = _coerce(hints[key], value, where, f"{prefix}{key}")
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where, key + ".")  # type: ignore[arg-type]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for option in inner[:-1]:  # the first that takes the value (str | list[str]: a path or a list)
            try:
                return _coerce(option, value, where, key)
            except ConfigError:
                continue
        return _coerce(inner[-1], value, where, key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key}: expected a list, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key}: expected a mapping, got {value!r}")
        _, value_hint = typing.get_args(hint)
        return {str(name): _coerce(value_hint, item, where, f"{key}.{name}") for name, item in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is Any or isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{where}: {key}: expected {hint.__name__}, got {value!r}")


def apply_overrides(data: dict[str, Any], overrides: list[str], where: str = "--set") -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a nested mapping, in place."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{where}: {item!r}: expected key=value")
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{where}: {key}: {part} is not a mapping")
        try:
            node[parts[-1]] = load_unique(raw) if raw != "" else None
        except yaml.YAMLError:
            node[parts[-1]] = raw
    return data
