"""SFT warm-ups shared between the groups of one sweep.

Arms of a comparison differ in their RL settings, but each seed's SFT warm-up is the same in
every arm. The first group that trains one writes the params to
`<sweep_dir>/sft_cache/<key>.npz` (with `<key>.json`: the point that trained it and what the key
covers); a later group whose points all find their key there starts RL from those params and
copies the source point's SFT rows into its own metrics.jsonl, instead of training again.
A point that cannot be vmapped (the tool rollout, a host reward) trains alone in rlpt.train with a
`PointCache`: it reads and writes the same cache, so its arms share warm-ups as a vmapped group's do.
A follow-up sweep may read other sweeps' caches too (`python -m rlpt.sweep --sft_from=DIR`): its
runs then start RL from exactly the SFT models of that sweep's runs, so their results pair
seed by seed with that sweep's arms.

The key is a hash of everything the sweep's SFT phase reads (rlpt.sweep.run._sft): the model
section (preset, dtype, checkpoint; the initial params are a function of it and the seed), the
task section (the data; a task whose warm-up reads another task's data names that task,
rlpt.tasks.sft_source: the one_shot task names its base task), the sft section (steps, batch
size, optimizer), the LoRA section when LoRA is on, and the seed. A run marked stopped during SFT is never cached.
"""
import hashlib
import json
import os
from typing import List, Optional, Sequence

import jax
import numpy as np

from rlpt.io.metrics_log import MetricsLog
from rlpt.models import lora
from rlpt.io.workdir import write_json_atomic
from rlpt.tasks import sft_source


def sft_inputs(cfg) -> dict:
    """What an SFT warm-up depends on (module doc)."""
    task = cfg.task.to_dict()
    source = sft_source(task["name"], task["kwargs"])   # e.g. one_shot: its base task
    if source is not None:
        task = {"name": source[0], "kwargs": source[1]}
    out = {"model": cfg.model.to_dict(), "task": task, "sft": cfg.sft.to_dict(),
           "seed": int(cfg.seed)}
    if lora.enabled(cfg):   # LoRA SFT (only then, so the keys of full-model warm-ups stay)
        out["lora"] = cfg.lora.to_dict()
    return out


def sft_key(cfg) -> str:
    text = json.dumps(sft_inputs(cfg), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _path(sweep_dir: str, cfg, ext: str) -> str:
    return os.path.join(sweep_dir, "sft_cache", f"{sft_key(cfg)}.{ext}")


def save(sweep_dir: str, pts, params: List, stopped) -> None:
    """Writes each point's SFT params (not those of runs in `stopped`), atomically."""
    os.makedirs(os.path.join(sweep_dir, "sft_cache"), exist_ok=True)
    for i, (p, prm) in enumerate(zip(pts, params)):
        if i in stopped:
            continue
        leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(prm)]
        path = _path(sweep_dir, p.cfg, "npz")
        with open(path + ".tmp", "wb") as f:
            np.savez(f, *leaves)
        os.replace(path + ".tmp", path)
        write_json_atomic(_path(sweep_dir, p.cfg, "json"),
                          {"point": p.name, "inputs": sft_inputs(p.cfg)})


def load(sweep_dirs: Sequence[str], pts, templates: List) -> Optional[tuple]:
    """-> (params per point, sources) when every point's SFT is cached in one of `sweep_dirs`
    (searched in order: the sweep's own first), else None. A source is `(sweep_dir, point
    name)`. `templates` are the points' initial params (tree structure, shapes and dtypes)."""
    out, sources = [], []
    for p, tmpl in zip(pts, templates):
        found = [d for d in sweep_dirs if os.path.exists(_path(d, p.cfg, "npz"))]
        if not found:
            return None
        path = _path(found[0], p.cfg, "npz")
        leaves, treedef = jax.tree_util.tree_flatten(tmpl)
        with np.load(path) as z:
            got = [z[f"arr_{i}"] for i in range(len(z.files))]
        if [(g.shape, g.dtype) for g in got] != [(np.shape(x), np.asarray(x).dtype)
                                                 for x in leaves]:
            raise ValueError(f"{path}: cached SFT params do not match the model of point "
                             f"{p.name} (delete the file to train again)")
        out.append(jax.tree_util.tree_unflatten(treedef, got))
        with open(_path(found[0], p.cfg, "json")) as f:
            sources.append((found[0], json.load(f)["point"]))
    return out, sources


def source_name(sweep_dir: str, source: tuple) -> str:
    """How a summary names a source: the point's name in the same sweep, else its directory."""
    src_dir, point = source
    if os.path.abspath(src_dir) == os.path.abspath(sweep_dir):
        return point
    return os.path.join(src_dir, "points", point)


def copy_sft_rows(source: tuple, log: MetricsLog) -> None:
    """Copies the SFT rows of the source `(sweep_dir, point)` into `log` (when it has none)."""
    if any(r["phase"] == "sft" for r in log.read()):
        return
    src_dir, point = source
    src = MetricsLog(os.path.join(src_dir, "points", point, "metrics.jsonl"))
    log.write([r for r in src.read() if r["phase"] == "sft"])


class PointCache:
    """One sweep point's view of the caches, for a point that trains alone (rlpt.train.run):
    `load(template, log)` -> its warm-up's params when one of `[sweep_dir, *sft_from]` has them
    (the source's SFT rows copied into `log`), else None; `save(params)` after it trained one."""

    def __init__(self, sweep_dir: str, point, sft_from: Sequence[str] = ()):
        self.sweep_dir, self.point, self.dirs = sweep_dir, point, [sweep_dir, *sft_from]
        self.source: Optional[str] = None   # the point whose warm-up was reused

    def load(self, template, log: MetricsLog):
        reused = load(self.dirs, [self.point], [template])
        if reused is None:
            return None
        (params,), (source,) = reused
        copy_sft_rows(source, log)
        self.source = source_name(self.sweep_dir, source)
        return params

    def save(self, params) -> None:
        save(self.sweep_dir, [self.point], [jax.device_get(params)], ())
