"""Search-space YAML -> an Optuna define-by-run function (conditional parameters included).

A space file maps HyperParams fields (polyp_ray.config: what a search may sample) to one of:

    model:         {choices: [unet, vgg16_unet]}          categorical
    learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}  float (int when low, high are ints)
    batch_size:    {low: 4, high: 16, step: 4}             int with a step
    loss:          {value: bce_dice}                        fixed
    base_width:    {choices: [8, 16], when: {model: [unet, encoder_decoder]}}   conditional

``when`` names parameters defined earlier in the file; a parameter whose condition is false is not
sampled (HyperParams' default, or the job's fixed ``trial`` value, applies). How a run is carried out
(RunSettings: epochs, seed, data, output_dir, ...) is the job's, never the space's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyp_ray.config import HyperParams, RunSettings, read_yaml
from polyp_ray.errors import ConfigError

SPEC_KEYS = {"choices", "low", "high", "log", "step", "value", "when"}
RUN_SETTINGS = {f.name for f in dataclasses.fields(RunSettings)}  # named in an error, never sampled


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "categorical" | "float" | "int" | "fixed"
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    value: Any = None
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def active(self, sampled: dict[str, Any]) -> bool:
        return all(sampled.get(key) in allowed for key, allowed in self.when.items())

    def suggest(self, trial: Any) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return self.value

    def values(self) -> tuple[Any, ...]:
        """The discrete values this parameter can take (categorical or fixed), else ()."""
        if self.kind == "categorical":
            return self.choices
        return (self.value,) if self.kind == "fixed" else ()


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]
    source: str

    def define_by_run(self, trial: Any) -> dict[str, Any]:
        """The function OptunaSearch calls: suggest each active parameter, return the fixed ones."""
        sampled: dict[str, Any] = {}
        constants: dict[str, Any] = {}
        for param in self.params:
            if not param.active({**sampled, **constants}):
                continue
            if param.kind == "fixed":
                constants[param.name] = param.value
            else:
                sampled[param.name] = param.suggest(trial)
        return constants or None  # type: ignore[return-value]

    def possible(self, name: str, default: Any) -> list[Any]:
        """Every value ``name`` may take in a trial (``default`` where the space does not sample it or a
        condition can switch it off): image sizes to decode, models whose weights must exist."""
        values: list[Any] = []
        for param in self.params:
            if param.name == name:
                if param.kind == "int":
                    values += list(range(int(param.low), int(param.high) + 1, int(param.step or 1)))
                elif param.kind == "float":
                    raise ConfigError(f"{self.source}: {name}: must take discrete values")
                else:
                    values += list(param.values())
                if not param.when:
                    return sorted(set(values), key=str)
        return sorted({*values, default}, key=str)

    def check_point(self, point: dict[str, Any], where: str) -> None:
        """A ``points_to_evaluate`` entry must name only parameters of this space, with values inside it."""
        by_name = {p.name: p for p in self.params}
        for key, value in point.items():
            if key not in by_name:
                raise ConfigError(f"{where}: points_to_evaluate: {key}: not a parameter of {self.source}")
            param = by_name[key]
            if param.kind == "categorical" and value not in param.choices:
                raise ConfigError(f"{where}: points_to_evaluate: {key}: {value!r} not in {list(param.choices)}")
            if param.kind in ("float", "int") and not (param.low <= value <= param.high):
                raise ConfigError(f"{where}: points_to_evaluate: {key}: {value!r} outside [{param.low}, {param.high}]")


def load_searchspace(path: str | Path) -> SearchSpace:
    raw = read_yaml(path)
    where = str(path)
    if not raw:
        raise ConfigError(f"{where}: the search space is empty")
    searchable = [f.name for f in dataclasses.fields(HyperParams)]
    params: list[Param] = []
    for name, spec in raw.items():
        if name not in searchable:
            hint = f" (a run setting, not a hyperparameter: the job sets trial.{name})" if name in RUN_SETTINGS else ""
            raise ConfigError(f"{where}: {name}: unknown or unsearchable parameter{hint}; searchable: "
                              f"{sorted(searchable)}")
        params.append(_parse_param(name, spec, where, {p.name for p in params}))
    space = SearchSpace(tuple(params), where)
    _check_values(space, where)
    return space


def _parse_param(name: str, spec: Any, where: str, earlier: set[str]) -> Param:
    if not isinstance(spec, dict):
        spec = {"value": spec}
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise ConfigError(f"{where}: {name}.{sorted(unknown)[0]}: unknown key; known: {sorted(SPEC_KEYS)}")
    when = _parse_when(name, spec.get("when", {}), where, earlier)
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: {name}.choices: must be a non-empty list")
        return Param(name, "categorical", choices=tuple(choices), when=when)
    if "value" in spec:
        return Param(name, "fixed", value=spec["value"], when=when)
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: {name}: needs choices, value, or low and high")
    low, high, log, step = spec["low"], spec["high"], bool(spec.get("log", False)), spec.get("step")
    for key, value in (("low", low), ("high", high)):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}: {name}.{key}: must be a number, got {value!r}")
    if not low < high:
        raise ConfigError(f"{where}: {name}.low: must be below high ({low} >= {high})")
    if log and low <= 0:
        raise ConfigError(f"{where}: {name}.low: must be > 0 for a log scale")
    if log and step is not None:
        raise ConfigError(f"{where}: {name}.step: cannot be combined with log")
    kind = "int" if isinstance(low, int) and isinstance(high, int) and not isinstance(step, float) else "float"
    return Param(name, kind, low=low, high=high, log=log, step=step, when=when)


def _parse_when(name: str, when: Any, where: str, earlier: set[str]) -> dict[str, tuple[Any, ...]]:
    if not isinstance(when, dict):
        raise ConfigError(f"{where}: {name}.when: must map earlier parameters to allowed values")
    parsed = {}
    for key, allowed in when.items():
        if key not in earlier:
            raise ConfigError(f"{where}: {name}.when.{key}: must name a parameter defined above {name}")
        parsed[key] = tuple(allowed if isinstance(allowed, list) else [allowed])
    return parsed


def _check_values(space: SearchSpace, where: str) -> None:
    """Every discrete value must make valid HyperParams (unknown model or loss names, bad sizes)."""
    for param in space.params:
        for value in param.values():
            try:
                HyperParams(**{param.name: value}).validate(where)
            except TypeError:
                raise ConfigError(f"{where}: {param.name}: {value!r} has the wrong type") from None
            except ConfigError as err:
                raise ConfigError(f"{where}: {param.name}: {value!r}: {str(err).split(': ', 2)[-1]}") from None
        if param.kind in ("float", "int"):
            for bound in (param.low, param.high):
                try:
                    HyperParams(**{param.name: type(getattr(HyperParams(), param.name))(bound)}).validate(where)
                except ConfigError as err:
                    reason = str(err).split(": ", 2)[-1]
                    raise ConfigError(f"{where}: {param.name}: bound {bound!r}: {reason}") from None
