"""Export a run's trained policy as a HF transformers directory.

    python -m rlpt.export --workdir=runs/grpo_arith --out=exported/grpo_arith [--phase=rl]
                         [--step=N] [--overwrite]

Reads the run's resolved config (workdir/config.json) for the model (a preset, or the checkpoint
it started from), restores only the parameters of the newest readable checkpoint of the last
phase (ckpt/rl, else ckpt/sft; `--phase` and `--step=N` pick one), and writes:

  config.json             HF Llama (Qwen2 when the model has QKV biases), with the token ids
  model.safetensors       float32 weights ([out, in] matrices, rotate-half rotary layout)
  generation_config.json  bos / eos (the run's stop tokens) / pad ids
  tokenizer.json, tokenizer_config.json   only when the run has a real tokenizer: the task's
                          `tokenizer_path`, else the checkpoint's own (GGUF metadata or HF files),
                          with its special tokens and chat template; a run on the synthetic
                          character tokenizer gets none (transformers has no equivalent)

The out directory is refused (UserError, before anything is read or written) when it is the
workdir, inside it (its config.json would replace the run's, which could then not resume) or holds
it, and when it is not empty, unless `--overwrite` is given. The export is written into a
temporary sibling (`out.tmp-<pid>`) and renamed to `out` only when complete (with `--overwrite`
the old `out` is renamed aside to `out.old-<pid>` and deleted after): a failed export leaves the
previous `out` as it was, never a half-written or mixed directory (a killed one may leave its
temporary sibling behind).

`AutoModelForCausalLM.from_pretrained(out)` then computes rlpt's logits (tests/test_export.py).
Parameters that are not the language model's (a PPO value head) are not exported.

A LoRA run (`lora.rank > 0` in its config.json) checkpoints only the adapters: the export rebuilds
the base the phase trained on (the run's initial model, as rlpt.build builds it, and for a phase
after SFT with the SFT phase's final adapters merged in) and writes the merged weights
(rlpt.models.lora.merge), a plain HF checkpoint (`lora_export_params`).
"""
import argparse
import dataclasses
import json
import os
import shutil

import jax
import numpy as np

from rlpt.errors import UserError
from rlpt.io.checkpoints import checkpoint_steps, restore_params, run_model_config
from rlpt.io.cli import user_errors
from rlpt.models import ModelConfig, has_own_tokenizer, init_params, lora
from rlpt.models.gguf import unpermute_qk
from rlpt.models.loaders import read_json_file, save_hf_checkpoint
from rlpt.models.transformer import compute_dtype
from rlpt.tokenizers import HFTokenizer, check_tokenizer_fits, load_tokenizer


def half_layout(cfg: ModelConfig, params):
    """(cfg, params) with rope_layout "half": an "interleaved" model (llama2.c) has the output
    columns of its Q and K kernels reordered per head, pairs (2i, 2i+1) -> (i, i + hd/2), which
    computes the same attention under the rotate-half rotation."""
    if cfg.rope_layout == "half":
        return cfg, params
    params = jax.tree_util.tree_map(np.asarray, params)
    for i in range(cfg.n_layers):
        attn = params[f"layer_{i}"]["attn"]
        for name, heads in (("q", cfg.n_heads), ("k", cfg.n_kv_heads)):
            attn[name]["kernel"] = unpermute_qk(attn[name]["kernel"].T, heads).T
            if "bias" in attn[name]:
                attn[name]["bias"] = unpermute_qk(attn[name]["bias"], heads)
    return dataclasses.replace(cfg, rope_layout="half"), params


def export_hf(out_dir: str, cfg: ModelConfig, params, tokenizer: HFTokenizer | None = None,
              stop_tokens=(), pad_id: int | None = None) -> None:
    """Writes `params` of `cfg` (and `tokenizer` when given) as a HF directory (module doc)."""
    cfg, params = half_layout(cfg, params)
    params = {k: v for k, v in params.items() if k in _model_keys(cfg)}
    eos = list(stop_tokens) if stop_tokens else getattr(tokenizer, "eos_id", None)
    ids = {"bos_token_id": getattr(tokenizer, "bos_id", None),
           "eos_token_id": eos[0] if isinstance(eos, list) and len(eos) == 1 else eos,
           "pad_token_id": pad_id if pad_id is not None else getattr(tokenizer, "pad_id", None)}
    ids = {k: v for k, v in ids.items() if v is not None}
    save_hf_checkpoint(out_dir, cfg, jax.device_get(params), extra=ids)
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(ids, f, indent=2)
    if tokenizer is not None:
        tokenizer.save_pretrained(out_dir, model_max_length=cfg.max_seq_len)


def _model_keys(cfg: ModelConfig):
    return set(jax.eval_shape(lambda: init_params(cfg, jax.random.PRNGKey(0))))


# ------------------------------------------------------------------------------- a run

def run_tokenizer(run: dict) -> HFTokenizer | None:
    """The run's real tokenizer (module doc), or None for the character tokenizer."""
    kwargs = run.get("task", {}).get("kwargs", {}) or {}
    ckpt = run["model"].get("checkpoint", "")
    if kwargs.get("tokenizer_path"):
        tok = load_tokenizer(kwargs["tokenizer_path"])
        given = {k: kwargs.get(f"{k}_token") or None for k in ("bos", "eos", "pad")}
        if any(given.values()):  # the task's own special tokens win
            special = {k: (given.get(k) or tok.special_tokens.get(f"{k}_token"))
                       for k in ("bos", "eos", "pad", "unk")}
            tok = HFTokenizer(tok.source, special["bos"], special["eos"], special["pad"],
                              tok.chat_template, special["unk"], backend=tok.backend)
        return tok
    if ckpt and has_own_tokenizer(ckpt):
        return load_tokenizer(ckpt)
    return None


def lora_export_params(workdir: str, run: dict, cfg: ModelConfig, phase: str = "",
                       step: int | None = None):
    """(phase, step, merged params) of a LoRA run (module doc). The base of a phase is rebuilt as
    training built it: `rlpt.build.build_model` of the run's config, held in the compute dtype
    (lora.base_weights), and for any phase but "sft" of a run with SFT steps, that base merged
    with the SFT phase's final adapters (the model RL or preference training started from)."""
    import ml_collections

    from rlpt.build import build_model
    run_cfg = ml_collections.ConfigDict(run)
    rank, targets = int(run_cfg.lora.rank), tuple(run_cfg.lora.get("targets", lora.TARGETS))
    s = lora.config_scale(run_cfg)
    _, params = build_model(run_cfg)
    dtype = compute_dtype(cfg)
    shapes = jax.eval_shape(lambda: lora.init_adapters(params, rank, targets))
    phase, step, adapters = restore_params(workdir, cfg, phase, step, shapes)
    base = lora.base_weights(params, dtype)
    sft_steps = int(run.get("sft", {}).get("steps", 0))
    if phase != "sft" and sft_steps:
        if sft_steps not in checkpoint_steps(os.path.join(workdir, "ckpt", "sft")):
            raise UserError(f"{workdir}: a LoRA run's {phase} phase trained on the SFT model, "
                            f"but ckpt/sft has no final step {sft_steps} to rebuild it from")
        _, _, sft = restore_params(workdir, cfg, "sft", sft_steps, shapes)
        base = lora.base_weights(lora.merge(base, sft, s), dtype)
    return phase, step, jax.device_get(lora.merge(base, adapters, s))


def check_out_dir(workdir: str, out_dir: str, overwrite: bool = False) -> None:
    """UserError naming the paths when `out_dir` may not receive the export (module doc)."""
    run, out = os.path.realpath(workdir), os.path.realpath(out_dir)
    inside = lambda a, b: a == b or a.startswith(b.rstrip(os.sep) + os.sep)
    if inside(out, run) or inside(run, out):
        where = "is" if out == run else "is inside" if inside(out, run) else "holds"
        raise UserError(f"--out={out_dir} {where} the run's directory --workdir={workdir} "
                        f"({out} vs {run}): the export would replace the run's files (its "
                        "config.json); choose an out directory outside the run")
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"--out={out_dir}: exists and is not a directory; choose another path")
    if os.path.isdir(out) and os.listdir(out) and not overwrite:
        raise UserError(f"--out={out_dir}: directory is not empty; pass --overwrite to replace "
                        "it (its files are deleted) or choose another path")


def write_dir_atomic(out_dir: str, write) -> None:
    """`write(tmp)` fills a temporary sibling of `out_dir`, which then replaces `out_dir` (an old
    one is renamed aside and deleted); on failure the temporary directory is removed and
    `out_dir` is left as it was (module doc). A symlink `out_dir` keeps pointing at the export."""
    out = os.path.realpath(out_dir)
    tmp, old = f"{out}.tmp-{os.getpid()}", f"{out}.old-{os.getpid()}"
    for stale in (tmp, old):  # this process's own leftovers only (same pid)
        shutil.rmtree(stale, ignore_errors=True)
    os.makedirs(tmp)
    try:
        write(tmp)
        if os.path.exists(out):
            os.rename(out, old)
            try:
                os.rename(tmp, out)
            except BaseException:
                os.rename(old, out)
                raise
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def export_run(workdir: str, out_dir: str, phase: str = "", step: int | None = None,
               overwrite: bool = False) -> dict:
    """Exports the run in `workdir` to `out_dir` (module doc: refused out directories, atomic
    replacement with `overwrite`); returns what was written."""
    check_out_dir(workdir, out_dir, overwrite)
    run = read_json_file(os.path.join(workdir, "config.json"))
    cfg = run_model_config(run)
    tokenizer = run_tokenizer(run)
    if tokenizer is not None:
        check_tokenizer_fits(tokenizer, cfg.vocab_size, tokenizer.source,
                             run["model"].get("checkpoint") or f"preset {run['model']['preset']}")
    if lora.enabled(run):
        phase, step, params = lora_export_params(workdir, run, cfg, phase, step)
    else:
        phase, step, params = restore_params(workdir, cfg, phase, step)
    sampling = run.get("sampling", {})
    write_dir_atomic(out_dir, lambda tmp: export_hf(
        tmp, cfg, params, tokenizer, tuple(sampling.get("stop_tokens", ())),
        sampling.get("pad_id")))
    return {"phase": phase, "step": step, "out": out_dir, "params": cfg.num_params(),
            "tokenizer": tokenizer.source if tokenizer is not None else None}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m rlpt.export", description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True, help="the run's directory")
    p.add_argument("--out", required=True, help="the HF directory to write")
    p.add_argument("--phase", default="", help="rl | sft (default: the last one with checkpoints)")
    p.add_argument("--step", type=int, default=None, help="a checkpoint step (default: newest)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a non-empty --out directory (default: refuse it)")
    a = p.parse_args(argv)
    res = export_run(a.workdir, a.out, a.phase, a.step, a.overwrite)
    tok = res["tokenizer"] or "none (the run used the character tokenizer)"
    print(f"rlpt.export: {a.workdir} ckpt/{res['phase']}/{res['step']} ({res['params']:,} "
          f"params) -> {a.out} (tokenizer: {tok})")


if __name__ == "__main__":
    with user_errors("rlpt.export"):
        main()
