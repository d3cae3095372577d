"""The one registry: algorithms, pieces, losses, advantages, shapings, rewards and tasks by name.

Each kind is a flat name -> object table. Registering a name twice is an error (it would silently
shadow an implementation); looking up an unknown name is an error that lists the known names.

Names resolve to modules by lookup, not by a central import list (as big_vision imports
`models.{name}`): a name that is not registered yet is looked for in the plug-in packages
`PLUGIN_PACKAGES` of its kind, first the module of the same name (`rlpt.algorithms.<name>`,
`rlpt.pieces.<name>`), then every module of those packages (a shaping or an advantage lives in
the file of the algorithm that defines it, e.g. `dapo_overlong` in rlpt/algorithms/dapo.py).
Adding an algorithm is adding its file.
"""
import importlib
import pkgutil
from typing import Any, Callable, Dict

_TABLES: Dict[str, Dict[str, Any]] = {
    "loss": {},       # losses: fn(batch, cfg) -> (loss, metrics)
    "advantage": {},  # advantage estimators: rlpt.advantages.Advantage records
    "reward": {},     # on-device task rewards
    "task": {},       # prompt sources (synthetic tasks, datasets)
    "shaping": {},    # reward shaping pieces (rlpt.algorithms.base.Piece with a `shape` hook)
    "piece": {},      # features an algorithm config turns on (rlpt.algorithms.base.Piece)
    "algorithm": {},  # rlpt.algorithms.base.Algorithm records (policy gradient, preference, RM)
}

# Where the names of each kind are defined (packages scanned on a miss, in this order).
PLUGIN_PACKAGES = {
    "loss": ("rlpt.losses", "rlpt.algorithms"),
    "advantage": ("rlpt.advantages", "rlpt.pieces", "rlpt.algorithms"),
    "shaping": ("rlpt.pieces", "rlpt.algorithms"),
    "piece": ("rlpt.pieces",),
    "algorithm": ("rlpt.algorithms",),
    "task": ("rlpt.tasks",),
    "reward": ("rlpt.tasks", "rlpt.rewards"),
}
_scanned = set()


def register(kind: str, name: str) -> Callable[[Any], Any]:
    """Decorator: `@register("loss", "grpo")` adds the object to the `kind` table under `name`."""
    _check_kind(kind)

    def deco(obj):
        table = _TABLES[kind]
        if name in table and table[name] is not obj:
            raise KeyError(f"{kind} {name!r} is already registered (by {table[name]!r})")
        table[name] = obj
        return obj

    return deco


def _check_kind(kind):
    if kind not in _TABLES:
        raise KeyError(f"unknown registry kind {kind!r}; known kinds: {sorted(_TABLES)}")


def _import_if_exists(module: str) -> None:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:   # the module exists and one of ITS imports is missing: a real error
            raise


def _scan(kind: str) -> None:
    """Imports every module of the kind's plug-in packages (once per package)."""
    for package in PLUGIN_PACKAGES.get(kind, ()):
        if package in _scanned:
            continue
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(getattr(pkg, "__path__", [])):
            if not info.name.startswith("_"):
                importlib.import_module(f"{package}.{info.name}")
        _scanned.add(package)


def get(kind: str, name: str) -> Any:
    """Looks `name` up in the `kind` table (importing its module on a miss, module doc); an
    unknown name raises a KeyError listing the known ones."""
    _check_kind(kind)
    table = _TABLES[kind]
    if name not in table and isinstance(name, str) and name.isidentifier():
        for package in PLUGIN_PACKAGES.get(kind, ()):
            _import_if_exists(f"{package}.{name}")
            if name in table:
                break
    if name not in table:
        _scan(kind)
    if name not in table:
        raise KeyError(f"unknown {kind} {name!r}; known {kind} names: {sorted(table)}")
    return table[name]


def names(kind: str) -> list:
    """Sorted names of a kind (every plug-in module of the kind imported first)."""
    _check_kind(kind)
    _scan(kind)
    return sorted(_TABLES[kind])


def has(kind: str, name: str) -> bool:
    """Whether `name` is a registered `kind` (looking it up as `get` does)."""
    try:
        get(kind, name)
        return True
    except KeyError:
        return False
