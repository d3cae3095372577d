"""The layering of DESIGN.md, enforced: a module imports only from its own layer or below, and
never a private (`_name`) name of another module.

    0 foundations  registry, state, optim, sharding, distributed, run_io, report, evaluation,
                   tokenizers, models/
    1 sampling     sampling, logprobs
    2 tasks        tasks/, rewards/, envs/
    3 math         advantages, losses/
    4 algorithms   algorithms/
    5 step         step
    6 loops        train, loop, config, catalog, preference/, sweep, export, __main__ modules
"""
import ast
import os


from conftest import REPO_ROOT

LAYERS = [
    ("rlpt.registry", "rlpt.state", "rlpt.optim", "rlpt.sharding", "rlpt.distributed",
     "rlpt.run_io", "rlpt.report", "rlpt.evaluation", "rlpt.tokenizers", "rlpt.models"),
    ("rlpt.sampling", "rlpt.logprobs"),
    ("rlpt.tasks", "rlpt.rewards", "rlpt.envs"),
    ("rlpt.advantages", "rlpt.losses"),
    ("rlpt.algorithms",),
    ("rlpt.step",),
]
TOP = len(LAYERS)  # everything else in rlpt/ (loops, entry points)


def layer_of(module: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return TOP


def rlpt_modules():
    root = os.path.join(REPO_ROOT, "rlpt")
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, REPO_ROOT)[:-3].replace(os.sep, ".")
                yield rel.removesuffix(".__init__"), path


def imports(path):
    """(imported module, imported names or None, line) of every rlpt import in a file."""
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("rlpt"):
                    yield a.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlpt"):
            yield node.module, [a.name for a in node.names], node.lineno


def violations():
    out = []
    for module, path in rlpt_modules():
        mine = layer_of(module)
        for target, names, line in imports(path):
            for name in names or [None]:
                full = target if name is None or layer_of(target) != TOP or target != "rlpt" \
                    else f"rlpt.{name}"
                if target == "rlpt" and name is not None:
                    full = f"rlpt.{name}"
                if layer_of(full) > mine:
                    out.append(f"{path}:{line}: {module} (layer {mine}) imports {full} "
                               f"(layer {layer_of(full)})")
                if name and name.startswith("_") and full != module:
                    out.append(f"{path}:{line}: {module} imports the private name {name} "
                               f"of {target}")
    return out


def test_no_module_imports_from_a_layer_above_or_a_private_name():
    assert violations() == []


def test_the_check_catches_a_violation(tmp_path, monkeypatch):
    """The checker itself: an upward import and a private import are reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from rlpt.step import fused_step\nfrom rlpt.sampling import _x\n")
    found = list(imports(str(bad)))
    assert ("rlpt.step", ["fused_step"], 1) in found and ("rlpt.sampling", ["_x"], 2) in found
    assert layer_of("rlpt.step") > layer_of("rlpt.losses.policy")
    monkeypatch.setattr("test_layering.rlpt_modules",
                        lambda: iter([("rlpt.losses.bad", str(bad))]))
    assert len(violations()) == 2
