"""GRPO on SmolLM2-135M-Instruct with a verifiable reward: evaluate, train, evaluate.

    python experiments/smollm2_rlvr/run.py --config=configs/smollm2_rlvr.py --workdir=WORKDIR

Writes WORKDIR/metrics.jsonl (one line per RL step and per evaluation) and WORKDIR/results.json
(before/after: held-out greedy accuracy, sampled accuracy, pass@k; GSM8K test greedy accuracy).
The step is rlpt's GRPO step (`rlpt.step.make_split_step`: rollout and update as jitted
programs, the verifier on the host between them).
"""
import argparse
import copy
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from rlpt import registry  # noqa: E402
from rlpt.algorithms.base import split_algo_config  # noqa: E402
from rlpt.config import hparams, load_config, validate  # noqa: E402
from rlpt.models import load_checkpoint  # noqa: E402
from rlpt.optim import make_optimizer  # noqa: E402
from rlpt.rewards.math_answer import gsm8k_reward  # noqa: E402
from rlpt.sampling import PLAIN_ROLLOUT, SamplingConfig  # noqa: E402
from rlpt.state import new_state  # noqa: E402
from rlpt.step import StepSpec, make_split_step  # noqa: E402
from rlpt.tokenizers import load_tokenizer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    c = load_config(a.config)
    # the task is this experiment's own (not a registered rlpt task): validate the rest
    v = copy.deepcopy(c)
    v.task.name, v.task.kwargs = "addition", {}
    v = validate(v)
    os.makedirs(a.workdir, exist_ok=True)
    mpath = os.path.join(a.workdir, "metrics.jsonl")
    json.dump(c.to_dict(), open(os.path.join(a.workdir, "config.json"), "w"), indent=1,
              default=str)
    t0 = time.time()
    mcfg, params = load_checkpoint(c.model.checkpoint, dtype=c.model.dtype)
    params = jax.tree_util.tree_map(jnp.asarray, params)
    tok = load_tokenizer(c.model.checkpoint)
    stops = (tok.eos_id,)
    kw = c.task.kwargs
    task = "word:" + kw["kind"]
    train_rows = common.task_rows(task, "train", kw["n_train"], seed=0)
    eval_rows = common.task_rows(task, "eval", c.eval.n_prompts, seed=0)
    gsm_rows = common.gsm8k_rows("test", c.eval.gsm8k_n)
    instr = kw["instruction"]

    def evaluate(tag, p):
        r = common.evaluate(mcfg, p, tok, eval_rows, instr, max_new_tokens=c.sampling.max_new_tokens,
                            k=c.eval.n_samples, seed=1000 + c.seed, chunk=c.eval.chunk,
                            stop_tokens=stops, show=4)
        g = common.evaluate(mcfg, p, tok, gsm_rows, "", max_new_tokens=c.eval.gsm8k_max_new_tokens,
                            k=0, seed=2000, chunk=c.eval.gsm8k_chunk, stop_tokens=stops, show=2)
        out = {"phase": "eval", "tag": tag, "heldout": r, "gsm8k_test": g,
               "elapsed_s": round(time.time() - t0, 1), "load": os.getloadavg()[0]}
        common.log(mpath, out)
        return out

    before = evaluate("before", params)

    B, G, T = c.rl.batch_size, c.sampling.num_samples, c.sampling.max_new_tokens
    s = c.sampling
    scfg = SamplingConfig(max_new_tokens=T, num_samples=G, temperature=s.temperature,
                          top_k=s.top_k, top_p=s.top_p, stop_tokens=stops, pad_id=tok.pad_id)
    optimizer = make_optimizer(v.optim)
    spec = StepSpec(model_cfg=mcfg, scfg=scfg, algorithm=registry.get("algorithm", v.algo.name),
                    algo=split_algo_config(v.algo)[0],
                    advantage=registry.get("advantage", v.algo.advantage),
                    optimizer=optimizer, rollout=PLAIN_ROLLOUT, reward=None, batch_size=B)
    hp = hparams(v)

    def host_reward(tokens, mask, target, target_len):
        out = np.zeros(tokens.shape[0], np.float32)
        for i in range(tokens.shape[0]):
            text = tok.decode(tokens[i][mask[i] > 0], stop_at_eos=True)
            gold = tok.decode(target[i][: int(target_len[i])], stop_at_eos=False)
            out[i] = gsm8k_reward(text, gold)
        return out

    step_fn = make_split_step(spec, host_reward)
    state = new_state(params, optimizer, c.seed)
    prompt_ids = [common.render(tok, q, instr) for q, _ in train_rows]
    width = max(map(len, prompt_ids))
    A = 8
    for it in range(c.rl.steps):
        rng = np.random.default_rng([c.seed, it])
        pick = rng.choice(len(train_rows), size=B, replace=False)
        x, m = common.pad_left([prompt_ids[j] for j in pick], tok.pad_id, width=width)
        target = np.full((B, A), tok.pad_id, np.int32)
        tlen = np.zeros((B,), np.int32)
        for i, j in enumerate(pick):
            ans = tok.encode(train_rows[j][1])
            target[i, :len(ans)], tlen[i] = ans, len(ans)
        batch = {"prompt": jnp.asarray(x), "prompt_mask": jnp.asarray(m),
                 "target": jnp.asarray(target), "target_len": jnp.asarray(tlen)}
        ts = time.time()
        state, metrics = step_fn(state, batch, hp)
        row = {k: float(np.asarray(v_)) for k, v_ in metrics.items() if np.asarray(v_).ndim == 0}
        row.update(phase="rl", step=it + 1, step_s=round(time.time() - ts, 1),
                   load=os.getloadavg()[0])
        common.log(mpath, row)
    after = evaluate("after", state.params)
    res = {"config": a.config, "seed": c.seed, "steps": c.rl.steps, "before": before,
           "after": after, "total_s": round(time.time() - t0, 1)}
    json.dump(res, open(os.path.join(a.workdir, "results.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
