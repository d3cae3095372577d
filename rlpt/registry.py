"""The one registry: algorithms, losses, advantages, shapings, rewards and tasks by name.

Each kind is a flat name -> object table. Registering a name twice is an error (it would silently
shadow an implementation); looking up an unknown name is an error that lists the known names.
"""
from typing import Any, Callable, Dict

_TABLES: Dict[str, Dict[str, Any]] = {
    "loss": {},       # policy / preference / supervised losses: fn(batch, cfg) -> (loss, metrics)
    "advantage": {},  # advantage estimators and reward shaping over [N] or [N, T] arrays
    "reward": {},     # on-device task rewards
    "task": {},       # prompt sources (synthetic tasks, datasets)
    "shaping": {},    # reward shaping before advantages: fn(r_N, correct_N, out, cfg, G) -> r_N
    "algorithm": {},  # policy-gradient algorithms: rlpt.algorithms.base.Algorithm records
}


def register(kind: str, name: str) -> Callable[[Any], Any]:
    """Decorator: `@register("loss", "grpo")` adds the object to the `kind` table under `name`."""
    if kind not in _TABLES:
        raise KeyError(f"unknown registry kind {kind!r}; known kinds: {sorted(_TABLES)}")

    def deco(obj):
        table = _TABLES[kind]
        if name in table and table[name] is not obj:
            raise KeyError(f"{kind} {name!r} is already registered (by {table[name]!r})")
        table[name] = obj
        return obj

    return deco


def get(kind: str, name: str) -> Any:
    """Looks `name` up in the `kind` table; unknown names raise a KeyError listing known ones."""
    if kind not in _TABLES:
        raise KeyError(f"unknown registry kind {kind!r}; known kinds: {sorted(_TABLES)}")
    table = _TABLES[kind]
    if name not in table:
        raise KeyError(f"unknown {kind} {name!r}; known {kind} names: {sorted(table)}")
    return table[name]


def names(kind: str) -> list:
    """Sorted registered names of a kind."""
    return sorted(_TABLES[kind])
