"""The layering of ../shared/DESIGN.md, enforced: a module imports only from its own layer or
below, and never a private (`_name`) name of another module. Every layer of DESIGN.md is its own
layer here, and the algorithm layer is split where an inversion could hide (records < pieces <
algorithms); preference and reward-model training sit in the same layers as RL, not on top.

     0 foundations  errors, registry, state, optim, sharding, distributed, io/, report,
                    evaluation/{metrics,validation}, tokenizers, models/
     1 sampling     sampling, logprobs
     2 tasks        tasks/, rewards/, envs/
     3 math         advantages, losses/
     4 records      algorithms/base, algorithms/common (the Algorithm and Piece records)
     5 pieces       pieces/ (features several algorithms chain)
     6 algorithms   algorithms/<name> (one file each: policy gradient, preference, RM)
     7 steps        step, env_step, preference/{records,reward_model,step,reward_model_step}
     8 config       config, preference/config
     9 build, loop  build, loop, evaluation/rollout
    10 entry points train, sweep/, preference/train, export, launch, __main__ modules
"""
import ast
import os


from conftest import REPO_ROOT

LAYERS = [
    ("rlpt.errors", "rlpt.registry", "rlpt.state", "rlpt.optim", "rlpt.sharding",
     "rlpt.distributed", "rlpt.io", "rlpt.report", "rlpt.evaluation.metrics",
     "rlpt.evaluation.validation", "rlpt.tokenizers", "rlpt.models"),
    ("rlpt.sampling", "rlpt.logprobs"),
    ("rlpt.tasks", "rlpt.rewards", "rlpt.envs"),
    ("rlpt.advantages", "rlpt.losses"),
    ("rlpt.algorithms.base", "rlpt.algorithms.common"),
    ("rlpt.pieces",),
    ("rlpt.algorithms",),
    ("rlpt.step", "rlpt.env_step", "rlpt.preference.records", "rlpt.preference.reward_model",
     "rlpt.preference.step", "rlpt.preference.reward_model_step"),
    ("rlpt.config", "rlpt.preference.config"),
    ("rlpt.build", "rlpt.loop", "rlpt.evaluation.rollout"),
]
TOP = len(LAYERS)  # everything else in rlpt/ (loops, entry points)


def layer_of(module: str) -> int:
    """The layer of the LONGEST prefix that names the module (rlpt.algorithms.base is layer 4,
    rlpt.algorithms.grpo layer 6)."""
    best, length = TOP, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > length:
                best, length = i, len(p)
    return best


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


def test_entry_points_sit_above_the_step_and_every_module_has_a_layer():
    """train, sweep and the preference trainer are above the step and the builders; every
    module below the entry points is named by a layer (a new top-level module must be placed)."""
    for entry in ("rlpt.train", "rlpt.sweep.main", "rlpt.sweep.run", "rlpt.preference.train"):
        assert layer_of(entry) == TOP and layer_of(entry) > layer_of("rlpt.step")
    assert layer_of("rlpt.build") > layer_of("rlpt.step") > layer_of("rlpt.algorithms.grpo")
    assert layer_of("rlpt.algorithms.grpo") > layer_of("rlpt.pieces.kl") > layer_of(
        "rlpt.algorithms.base")
    entry = {"rlpt.train", "rlpt.export", "rlpt.launch", "rlpt.shapes"}
    unplaced = [m for m, path in rlpt_modules() if layer_of(m) == TOP and m not in entry
                and not path.endswith("__init__.py")
                and not m.startswith(("rlpt.sweep", "rlpt.preference.train"))
                and not m.endswith("__main__")]
    assert unplaced == [], unplaced
