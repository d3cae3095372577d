"""The preference trainer's view of the one registry: preference and reward-model algorithms are
`rlpt.algorithms.base.Algorithm` records with `kind="preference"` or `kind="reward_model"`, found
by name like every algorithm (rlpt/algorithms/<name>.py). A reward-model record of `rm.kind` k
is named `rm_<k>` (rlpt/algorithms/rm_<k>.py).

A record's config is its DEFAULTS overlaid with the config section (`cfg.algo`, `cfg.rm`); its
declared `dynamic` fields that hold numbers are the step's `hp["algo"]` (float32 scalars: a new
value never recompiles), the rest are static Python values.
"""
from typing import Dict, List

import jax.numpy as jnp

from rlpt import registry
from rlpt.algorithms.base import AlgoConfig, Algorithm, is_dynamic

PREFERENCE, REWARD_MODEL = "preference", "reward_model"
RM_PREFIX = "rm_"


def names_of_kind(kind: str) -> List[str]:
    """Sorted names of the registered algorithms of `kind`."""
    return [n for n in registry.names("algorithm") if is_of_kind(n, kind)]


def is_of_kind(name: str, kind: str) -> bool:
    """Whether `name` is a registered algorithm of `kind`."""
    return registry.has("algorithm", name) and registry.get("algorithm", name).kind == kind


def algorithm_of(name: str, kind: str) -> Algorithm:
    """The record `name`, which must be of `kind`: an unknown name is the registry's KeyError
    listing the known names, a record of another kind a ValueError listing those of `kind`."""
    record = registry.get("algorithm", name)
    if record.kind != kind:
        raise ValueError(f"algorithm {name!r} is a {record.kind} algorithm, not a {kind} one; "
                         f"known {kind} algorithms: {names_of_kind(kind)}")
    return record


def rm_name(rm_kind: str) -> str:
    """The record name of reward-model kind `rm_kind` (`cfg.rm.kind`)."""
    return RM_PREFIX + rm_kind


def rm_kinds() -> List[str]:
    """The reward-model kinds (`cfg.rm.kind` values) of the registered records."""
    return [n[len(RM_PREFIX):] for n in names_of_kind(REWARD_MODEL)]


def fields(record: Algorithm, section) -> Dict:
    """`record.defaults` overlaid with the fields of a config section (ConfigDict, dict, None)."""
    out = dict(record.defaults)
    out.update(dict(section.items()) if section is not None else {})
    return out


def dynamic_hparams(record: Algorithm, section) -> Dict:
    """The declared dynamic fields of `section` (over the record's defaults) that hold numbers,
    as float32 scalars: the step's `hp["algo"]`."""
    return {k: jnp.asarray(v, jnp.float32) for k, v in fields(record, section).items()
            if is_dynamic(k, v, record.dynamic)}


def view(record: Algorithm, section, dynamic=None) -> AlgoConfig:
    """What hooks and losses read as `c`: the record's defaults, the section's values, and the
    traced `dynamic` values (the step's `hp["algo"]`) over them."""
    return AlgoConfig(fields(record, section), dict(dynamic or {}))
