"""Sweep points: declaring a grid beside the recipe, checking it, and grouping it into programs.

A config file may define `get_sweep(arg)` next to `get_config(arg)` (big_vision style); it
returns the points, a list of `{"config.key": value}` override dicts:

    from rlpt.sweep.points import axis, product, seeds

    def get_sweep(arg):
        return product(axis("config.optim.lr", [5e-4, 1e-3]), seeds(3))   # 6 points

`points_to_configs(base, points)` applies each point to a copy of the base config and
validates it; every error (unknown key, value of the wrong type, an empty grid, two points
with the same workdir, an invalid config) is one line naming the point and the key, raised
before anything compiles. `group_points` puts points that differ only in the seed and the
dynamic hyperparameters (`rlpt.config.hparams`: every float of cfg.optim, cfg.sft.optim and
cfg.algo) in one group: one compiled program with a leading run axis (rlpt.sweep.run).
"""
import dataclasses
import itertools
import json
import re
from typing import Any, Dict, List, Sequence

import ml_collections

from rlpt import registry
from rlpt.config import default_algo, hparams, validate
from rlpt.errors import UserError
from rlpt.optim import DYNAMIC_FIELDS, optim_spec

PREFIX = "config."


class SweepError(UserError):
    """A sweep that cannot run as declared (one line naming the point and the key)."""


def axis(key: str, values: Sequence[Any]) -> List[Dict[str, Any]]:
    """One axis of a grid: `[{key: v} for v in values]`."""
    return [{key: v} for v in values]


def seeds(n: int, start: int = 0) -> List[Dict[str, Any]]:
    """The seed axis: `config.seed` = start, ..., start + n - 1."""
    return axis(PREFIX + "seed", list(range(start, start + n)))


def product(*axes: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The Cartesian product of axes (each a list of override dicts), the first axis outermost;
    two axes setting the same key is an error."""
    out = []
    for combo in itertools.product(*axes):
        point: Dict[str, Any] = {}
        for part in combo:
            clash = set(point) & set(part)
            if clash:
                raise SweepError(f"sweep product: key {sorted(clash)[0]!r} is set by two axes")
            point.update(part)
        out.append(point)
    return out


@dataclasses.dataclass
class Point:
    """One run of a sweep: its index, overrides, validated config and name (its workdir under
    points/)."""
    index: int
    overrides: Dict[str, Any]
    cfg: ml_collections.ConfigDict
    name: str

    @property
    def setting(self) -> Dict[str, Any]:
        """The overrides without the seed: points of one setting differ only in the seed."""
        return {k: v for k, v in self.overrides.items() if k != PREFIX + "seed"}

    @property
    def seed(self) -> int:
        return int(self.cfg.seed)


def first_then(first: str, algos) -> tuple:
    """`algos` with `first` moved to the front (the comparison's base algorithm)."""
    return (first,) + tuple(x for x in algos if x != first)


def union_algo(names) -> ml_collections.ConfigDict:
    """default_algo(names[0]) plus every key of the other algorithms' defaults it lacks (their
    first value), so that one base config holds every arm's fields and a sweep point switches the
    algorithm by overriding existing keys (algorithm_arms)."""
    out = default_algo(names[0])
    for name in names[1:]:
        for k, v in default_algo(name).items():
            if k not in out:
                out[k] = v
    return out


def algorithm_arms(names: Sequence[str], uniform=("name", "beta", "group_size")
                   ) -> List[Dict[str, Any]]:
    """One point per algorithm, for a base config whose `algo` is `union_algo(names)` (above):
    `config.algo.name` and the keys where the algorithm's defaults differ from that
    union, except the `uniform` keys, which a config sets alike for every arm. Arms that differ
    only in dynamic hyperparameters still differ in `name`, so each arm is its own group."""
    base = union_algo(list(names))
    arms = []
    for name in names:
        o = {"config.algo.name": name}
        for k, v in default_algo(name).items():
            if k not in uniform and base[k] != v:
                o[f"config.algo.{k}"] = v
        arms.append(o)
    return arms


def chosen_algorithm_arms(first: str, algos: Sequence[str], chosen: str) -> List[Dict[str, Any]]:
    """The algorithm_arms of a `comparison_config(first, algos)` base (configs/recipes.py) for the
    '/'-separated algorithm names of `chosen` (an experiment config's `arms` argument), in that
    order."""
    names = first_then(first, algos)
    by_name = dict(zip(names, algorithm_arms(names)))
    wanted = [x for x in chosen.split("/") if x]
    unknown = [x for x in wanted if x not in by_name]
    if unknown:
        raise ValueError(f"arms={chosen!r}: unknown {unknown}; known: {list(names)}")
    return [by_name[x] for x in wanted]


def point_name(overrides: Dict[str, Any]) -> str:
    """A file-system-safe name of a point: `optim.lr=0.0005,seed=1` (`base` for no overrides); a
    tuple or list value is written `a+b` (`none` when empty)."""
    show = lambda v: ("+".join(map(str, v)) or "none") if isinstance(v, (tuple, list)) else v
    parts = [f"{k[len(PREFIX):]}={show(v)}" for k, v in overrides.items()]
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", ",".join(parts)) or "base"


def _set(cfg, key: str, value, where: str) -> None:
    if not isinstance(key, str) or not key.startswith(PREFIX):
        raise SweepError(f"{where}: key {key!r} must start with {PREFIX!r} (e.g. 'config.seed')")
    path = key[len(PREFIX):].split(".")
    node = cfg
    for i, part in enumerate(path):
        if not isinstance(node, (ml_collections.ConfigDict, dict)) or part not in node:
            known = sorted(node.keys()) if isinstance(node, (ml_collections.ConfigDict, dict)) \
                else []
            raise SweepError(f"{where}: unknown config key {key!r} (no {'.'.join(path[:i + 1])!r}"
                             + (f"; known there: {known}" if known else "") + ")")
        if i < len(path) - 1:
            node = node[part]
    old = node[path[-1]]
    if isinstance(old, (ml_collections.ConfigDict, dict)):
        raise SweepError(f"{where}: {key!r} is a section, not a value")
    if old is not None and isinstance(old, bool) != isinstance(value, bool):
        raise SweepError(f"{where}: {key}={value!r} has the wrong type ({type(value).__name__}; "
                         f"the config holds {type(old).__name__} {old!r})")
    try:
        node[path[-1]] = value
    except (TypeError, ValueError) as e:
        raise SweepError(f"{where}: {key}={value!r} has the wrong type ({type(value).__name__}; "
                         f"the config holds {type(old).__name__} {old!r}): {e}") from None


def apply_overrides(cfg, overrides: Dict[str, Any], where: str = "config") -> None:
    """Sets each `{"config.a.b": value}` of `overrides` in `cfg` (in place), with the checks of
    a sweep point (an unknown key, a section, a wrong type: SweepError naming `where`): a
    config file's `get_config` can build an arm from the same dict its `get_sweep` lists."""
    for key, value in overrides.items():
        _set(cfg, key, value, where)


def run_steps(cfg) -> int:
    """A point's steps for the progress bar: SFT plus RL, or plus its preference or
    reward-model phase for a preference config."""
    if "mode" not in cfg:
        return cfg.sft.steps + cfg.rl.steps
    return cfg.sft.steps + (cfg.pref.steps if cfg.mode == "policy" else cfg.rm.steps)


def validate_any(cfg) -> ml_collections.ConfigDict:
    """rlpt.config.validate, or rlpt.preference.config.validate for a preference config."""
    if "mode" in cfg:   # preference configs (rlpt.preference.config.preference_config)
        from rlpt.preference.config import validate as validate_preference
        return validate_preference(cfg)
    return validate(cfg)


def points_to_configs(base: ml_collections.ConfigDict, points) -> List[Point]:
    """Each point applied to a copy of `base` and validated (module doc: the errors)."""
    if not isinstance(points, (list, tuple)):
        raise SweepError(f"get_sweep must return a list of {{'config.key': value}} dicts, got "
                         f"{type(points).__name__} {points!r}")
    if not points:
        raise SweepError(f"get_sweep returned an empty grid ({points!r}): nothing to run")
    out, names = [], {}
    for i, overrides in enumerate(points):
        where = f"sweep point {i} ({overrides!r})"
        if not isinstance(overrides, dict):
            raise SweepError(f"{where}: a point must be a dict of {{'config.key': value}}")
        cfg = ml_collections.ConfigDict(base.to_dict())
        apply_overrides(cfg, overrides, where)
        try:
            cfg = validate_any(cfg)
        except ValueError as e:
            raise SweepError(f"{where}: {e}") from None
        name = point_name(overrides)
        if name in names:
            raise SweepError(f"sweep points {names[name]} and {i} both write points/{name} "
                             f"(the same overrides {overrides!r}); drop one")
        names[name] = i
        out.append(Point(i, dict(overrides), cfg, name))
    return out


def static_key(cfg) -> str:
    """The config with the seed and every dynamic hyperparameter taken out (and the static facts
    derived from them kept): points with equal keys can share one compiled program."""
    d = json.loads(cfg.to_json_best_effort(sort_keys=True))
    d.pop("seed")
    d.pop("wandb", None)
    for section in (d["optim"], d["sft"]["optim"]):
        for k in DYNAMIC_FIELDS:
            section.pop(k, None)
    for k in hparams(cfg)["algo"]:
        d["algo"].pop(k)
    d["derived"] = {"optim": list(optim_spec(cfg.optim)),
                    "sft.optim": list(optim_spec(cfg.sft.optim))}
    return json.dumps(d, sort_keys=True)


def not_vmappable(cfg) -> str:
    """Why a config's runs cannot share a vmapped program ('' when they can)."""
    if registry.get("algorithm", cfg.algo.name).kind != "policy_gradient":
        return (f"algo.name={cfg.algo.name!r} trains in the preference trainer "
                "(rlpt.preference.train), one run at a time")
    if cfg.reward.kind not in ("device", "reward_model"):   # both computed on the device
        return f"reward.kind={cfg.reward.kind!r} leaves the device (host reward)"
    if cfg.rollout.get("kind", "plain") != "plain":
        return f"rollout.kind={cfg.rollout.kind!r} (the tool rollout's evaluation is host-side)"
    return ""


@dataclasses.dataclass
class Group:
    """Points sharing one static key, in sweep order; `reason` is why they cannot be vmapped."""
    index: int
    points: List[Point]
    reason: str = ""

    @property
    def vmapped(self) -> bool:
        return not self.reason


def group_points(points: List[Point]) -> List[Group]:
    """Groups in order of first appearance (module doc)."""
    by_key: Dict[str, Group] = {}
    for p in points:
        key = static_key(p.cfg)
        if key not in by_key:
            by_key[key] = Group(len(by_key), [], not_vmappable(p.cfg))
        by_key[key].points.append(p)
    return list(by_key.values())
