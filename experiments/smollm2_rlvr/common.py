"""SmolLM2-135M-Instruct RLVR experiment: tasks, chat prompts, batched sampling and scoring.

Everything model-side is rlpt's public API: `load_checkpoint` / `load_tokenizer` (the GGUF and
its own chat template), `rlpt.sampling.sample` (jitted), the GRPO `StepSpec` of `rlpt.step`
with the reward on the host (`make_split_step`), and the math verifier of
`rlpt.rewards.math_answer` (`gsm8k_reward`: \\boxed{}, `####`, "the answer is", else the last
number of the completion).
"""
import json
import os
import sys
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from rlpt.rewards.math_answer import extract_answer, gsm8k_reward  # noqa: E402
from rlpt.sampling import SamplingConfig, sample  # noqa: E402

NAMES = ["Tom", "Anna", "Ben", "Lucy", "Sam", "Mia", "Leo", "Emma", "Max", "Zoe", "Jack", "Lily"]
ITEMS = ["apples", "books", "marbles", "pencils", "stickers", "cookies", "coins", "cards",
         "shells", "balloons"]


def word_problem(rng, kind):
    """One short arithmetic word problem: (question, gold answer string)."""
    name, item = NAMES[rng.integers(len(NAMES))], ITEMS[rng.integers(len(ITEMS))]
    if kind == "add":
        a, b = rng.integers(2, 30, size=2)
        return (f"{name} has {a} {item}. {name} gets {b} more {item}. "
                f"How many {item} does {name} have now?", str(a + b))
    if kind == "add_small":
        a, b = rng.integers(1, 10, size=2)
        return (f"{name} has {a} {item}. {name} gets {b} more {item}. "
                f"How many {item} does {name} have now?", str(a + b))
    if kind == "sub":
        a = rng.integers(10, 40)
        b = rng.integers(1, a)
        return (f"{name} has {a} {item} and gives away {b}. How many {item} are left?",
                str(a - b))
    if kind == "mix":
        return word_problem(rng, ("add", "sub")[rng.integers(2)])
    if kind == "plain_add":
        a, b = rng.integers(1, 51, size=2)
        return f"What is {a} + {b}?", str(a + b)
    raise ValueError(kind)


def gsm8k_rows(split, n=None, easiest=False):
    """GSM8K rows (question, answer); `easiest`: sorted by worked-solution length."""
    from rlpt.tasks.gsm8k_data import read_split
    rows = read_split(split)
    if easiest:
        rows = sorted(rows, key=lambda r: len(r["solution"]))
    rows = rows[:n] if n else rows
    return [(r["question"], r["answer"]) for r in rows]


def task_rows(task, split, n, seed):
    """`n` (question, answer) rows of a task. Train and held-out rows come from disjoint seeds
    (word problems: exact duplicates of held-out questions are removed from train)."""
    if task.startswith("gsm8k_easy"):
        rows = gsm8k_rows("train", easiest=True)
        # the easiest 2n rows: even ones train, odd ones held out
        return rows[(0 if split == "train" else 1)::2][:n]
    kind = task.split(":")[1]
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    rows = [word_problem(rng, kind) for _ in range(n)]
    if split == "train":
        held = {q for q, _ in task_rows(task, "eval", 256, seed)}
        rows = [r for r in rows if r[0] not in held]
    return rows


def render(tok, question, instruction):
    content = question + (("\n" + instruction) if instruction else "")
    return tok.encode(tok.apply_chat_template([{"role": "user", "content": content}]))


def pad_left(id_lists, pad_id, multiple=16, width=0):
    P = max(width, max(map(len, id_lists)))
    P = -(-P // multiple) * multiple
    prompt = np.full((len(id_lists), P), pad_id, np.int32)
    mask = np.zeros((len(id_lists), P), np.int32)
    for i, ids in enumerate(id_lists):
        prompt[i, P - len(ids):], mask[i, P - len(ids):] = ids, 1
    return prompt, mask


@lru_cache(maxsize=None)
def _sampler(mcfg, scfg):
    return jax.jit(lambda p, x, m, r: sample(mcfg, p, x, m, r, scfg))


def completions(mcfg, params, tok, prompts_ids, scfg, rng, chunk):
    """Decoded completions [len(prompts)][G] (sampled in chunks of `chunk` prompts)."""
    out, width = [], max(map(len, prompts_ids))   # one width (one compilation) per call
    for s in range(0, len(prompts_ids), chunk):
        part = prompts_ids[s:s + chunk]
        n = len(part)
        part = part + [part[-1]] * (chunk - n)          # one compiled shape per width
        x, m = pad_left(part, tok.pad_id, width=width)
        o = _sampler(mcfg, scfg)(params, jnp.asarray(x), jnp.asarray(m),
                                 jax.random.fold_in(rng, s))
        toks, msk = np.asarray(o.tokens), np.asarray(o.mask)
        G = scfg.num_samples
        for i in range(n):
            out.append([tok.decode(toks[i * G + g][msk[i * G + g] > 0], stop_at_eos=True)
                        for g in range(G)])
    return out


def evaluate(mcfg, params, tok, rows, instruction, *, max_new_tokens, k, seed, chunk,
             stop_tokens, greedy_chunk=None, show=0):
    """Greedy accuracy, and with k > 0 sampled (temperature 1) mean accuracy and pass@k."""
    ids = [render(tok, q, instruction) for q, _ in rows]
    res = {"n": len(rows)}
    g_scfg = SamplingConfig(max_new_tokens=max_new_tokens, num_samples=1, greedy=True,
                            stop_tokens=stop_tokens, pad_id=tok.pad_id)
    greedy = completions(mcfg, params, tok, ids, g_scfg, jax.random.PRNGKey(seed),
                         greedy_chunk or chunk)
    correct = [gsm8k_reward(c[0], a) for c, (_, a) in zip(greedy, rows)]
    res["greedy_acc"] = float(np.mean(correct))
    res["examples"] = [{"q": q, "gold": a, "greedy": c[0], "extracted": extract_answer(c[0])}
                       for (q, a), c in list(zip(rows, greedy))[:show]]
    if k:
        s_scfg = SamplingConfig(max_new_tokens=max_new_tokens, num_samples=k, temperature=1.0,
                                stop_tokens=stop_tokens, pad_id=tok.pad_id)
        samp = completions(mcfg, params, tok, ids, s_scfg, jax.random.PRNGKey(seed + 1), chunk)
        sc = np.array([[gsm8k_reward(c, a) for c in cs] for cs, (_, a) in zip(samp, rows)])
        res["sample_acc"] = float(sc.mean())
        res[f"pass@{k}"] = float((sc.max(axis=1) > 0).mean())
        # unbiased pass@j for j <= k (Chen et al. 2021)
        for j in (1, 2, 4):
            if j < k:
                c = sc.sum(axis=1)
                from math import comb
                res[f"pass@{j}"] = float(np.mean([1 - comb(k - int(ci), j) / comb(k, j)
                                                  for ci in c]))
    return res


def log(path, obj):
    with open(path, "a") as f:
        f.write(json.dumps(obj) + "\n")
    print(json.dumps(obj), flush=True)
