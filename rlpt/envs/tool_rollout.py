"""Multi-turn tool-use rollouts inside the one jitted RL program (ARTIST, arXiv 2505.01441).

`tool_sample` is the sampler (`rlpt.sampling.decode`) with the calculator tool
(`rlpt.envs.calculator`) plugged into its environment-step hook (`calculator_env`). Every row
decodes one token per loop step into slot `P + t` of the KV cache; a row is in one of two
modes:

* model mode: the token is drawn from the policy (mask 1, its log-prob and entropy recorded);
* tool mode: the row has pending result tokens, and the next one is written instead of a draw
  (mask 0, log-prob 0). It is fed through the model at the next step like any other token, so
  the KV cache holds the tool output and later model tokens attend to it.

When a model token `]` closes a call opened by `[`, the call body (kept in a per-row buffer of
`max_call_len` tokens) is evaluated on device and its rendered result (`<5535>` or `<?>`)
becomes the row's pending tokens, for at most `max_calls` calls per row; a call closed after
that gets no result (counted in `unanswered`) and the model just continues. A row ends at its
stop token or at `max_new_tokens` (a budget shared by model and tool tokens). Rows never wait
for each other: the tool is a few element-wise ops evaluated for all rows (skipped with
`lax.cond` on steps where no call closes).

The output extends `SampleOutput`: `mask` is 1 on model tokens only, so the tool tokens are in
`tokens` (teacher forcing sees them) but not in the loss or its normaliser (ARTIST section 3);
`valid` marks every token of the sequence and is what teacher forcing must use.

`tool_rollout(tcfg)` is this sampler as a `rlpt.sampling.Rollout`, the value the generic step
(rlpt.step) takes: the reward reads `source = valid + tool_mask` (0 pad, 1 model token, 2 tool
token), teacher forcing uses `out.valid` instead of `out.mask`, and the step logs the tool
metrics; accuracy comes from the reward's `correct` (as for every reward that gives one).

Trainer integration (`cfg.rollout.kind = "tool"`, checked by `validate_rollout_config`):
`rlpt.train` then passes `tool_rollout`, SFTs with the loss on `solution_loss_mask` (model
tokens) and evaluates with `evaluate_tool` (greedy accuracy, pass@k, call rates), see
docs/tool_use.md.
"""
import dataclasses
import functools
from typing import Dict, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rlpt.envs.calculator import CALL_CLOSE, CALL_OPEN, RESULT_WIDTH, calculator
from rlpt.errors import UserError
from rlpt.models.config import ModelConfig
from rlpt.sampling import Environment, Rollout, SamplingConfig, decode, transition_ids


@dataclasses.dataclass(frozen=True)
class ToolConfig:
    max_calls: int = 2          # answered tool calls per rollout (the turn limit)
    max_call_len: int = 24      # call body buffer width; longer bodies get the error result

    def __post_init__(self):
        if self.max_calls < 0 or self.max_call_len < 1:
            raise ValueError(f"tool: need max_calls >= 0 and max_call_len >= 1, got {self}")

    @classmethod
    def from_config(cls, c) -> "ToolConfig":
        return cls() if c is None else cls(**{k: int(c[k]) for k in ("max_calls", "max_call_len")
                                              if k in c})


class ToolSampleOutput(NamedTuple):
    """`SampleOutput`'s fields (same meaning, but `mask`/`lengths` count model tokens only)
    followed by the tool fields."""
    tokens: jax.Array         # [N, T] int32, model and tool tokens, pad after the stop token
    logprobs: jax.Array       # [N, T] float32, 0 on tool tokens and padding
    entropies: jax.Array      # [N, T] float32, 0 on tool tokens and padding
    mask: jax.Array           # [N, T] float32, 1 on MODEL tokens (the loss mask)
    lengths: jax.Array        # [N] int32, number of model tokens
    stopped: jax.Array        # [N] bool, emitted a stop token
    valid: jax.Array          # [N, T] float32, 1 on every token of the sequence (model + tool)
    tool_mask: jax.Array      # [N, T] float32, 1 on injected tool-result tokens
    num_calls: jax.Array      # [N] int32, calls answered by the tool
    call_ok: jax.Array        # [N] int32, answered calls that returned a value (not `<?>`)
    unanswered: jax.Array     # [N] int32, calls closed after max_calls (no result injected)


def calculator_env(tcfg: ToolConfig) -> Environment:
    """The calculator as an environment of the sampler (`rlpt.sampling.decode`): a per-row call
    state machine over the policy's tokens; a closed call is evaluated on device and its
    rendered result becomes the row's pending tokens (module doc)."""
    L = tcfg.max_call_len
    zi = lambda *shape: jnp.zeros(shape, jnp.int32)

    def init(N):
        return {"in_call": jnp.zeros((N,), bool), "buf": zi(N, L), "clen": zi(N),
                "pbuf": zi(N, RESULT_WIDTH), "plen": zi(N), "ppos": zi(N),
                "n_calls": zi(N), "n_ok": zi(N), "n_unans": zi(N)}

    def pending(st):
        token = jnp.take_along_axis(
            st["pbuf"], jnp.minimum(st["ppos"], RESULT_WIDTH - 1)[:, None], axis=1)[:, 0]
        return st["ppos"] < st["plen"], token

    def step(st, tok, sampled, forced):
        N = tok.shape[0]
        opens = sampled & ~st["in_call"] & (tok == CALL_OPEN)   # calls see policy tokens only
        closes = sampled & st["in_call"] & (tok == CALL_CLOSE)
        body = sampled & st["in_call"] & ~closes
        s = dict(st)
        s["buf"] = jnp.where((jnp.arange(L)[None, :] == st["clen"][:, None]) & body[:, None],
                             tok[:, None], st["buf"])
        s["clen"] = jnp.where(opens, 0, st["clen"] + body.astype(jnp.int32))
        s["in_call"] = (st["in_call"] | opens) & ~closes
        answer = closes & (st["n_calls"] < tcfg.max_calls)
        res, res_len, code = jax.lax.cond(
            jnp.any(answer), lambda: calculator(s["buf"], s["clen"]),
            lambda: (zi(N, RESULT_WIDTH), zi(N), zi(N)))
        s["pbuf"] = jnp.where(answer[:, None], res, st["pbuf"])
        s["plen"] = jnp.where(answer, res_len, st["plen"])
        s["ppos"] = jnp.where(answer, 0, st["ppos"] + forced.astype(jnp.int32))
        s["n_calls"] = st["n_calls"] + answer.astype(jnp.int32)
        s["n_ok"] = st["n_ok"] + (answer & (code == 0)).astype(jnp.int32)
        s["n_unans"] = st["n_unans"] + (closes & ~answer).astype(jnp.int32)
        return s

    return Environment(init, pending, step)


def tool_sample(model_cfg: ModelConfig, params, prompt_BP, prompt_mask_BP, rng,
                scfg: SamplingConfig, tcfg: ToolConfig, apply_fn=None) -> ToolSampleOutput:
    """Samples `scfg.num_samples` tool-using completions per prompt: `rlpt.sampling.decode` with
    the calculator environment. Pure; call under jit. `apply_fn` replaces the policy's forward
    (tests pass a scripted policy)."""
    out, env = decode(model_cfg, params, prompt_BP, prompt_mask_BP, rng, scfg,
                      calculator_env(tcfg), apply_fn)
    e = env.env_state
    return ToolSampleOutput(*out, valid=env.valid, tool_mask=env.env_mask,
                            num_calls=e["n_calls"], call_ok=e["n_ok"], unanswered=e["n_unans"])


def tool_completion_inputs(prompt_BP, prompt_mask_BP, out: ToolSampleOutput, num_samples: int):
    """Teacher-forcing inputs (tokens [N, P+T], valid [N, P+T]): like
    `rlpt.sampling.completion_inputs`, but the completion's validity is `out.valid` (model AND
    tool tokens), so the forward sees the tool results the rollout's KV cache held."""
    prompt_NP = jnp.repeat(prompt_BP, num_samples, axis=0)
    pmask_NP = jnp.repeat(prompt_mask_BP, num_samples, axis=0).astype(bool)
    return (jnp.concatenate([prompt_NP, out.tokens], axis=1),
            jnp.concatenate([pmask_NP, out.valid.astype(bool)], axis=1))


def completion_source(out: ToolSampleOutput) -> jax.Array:
    """[N, T] int32: 0 padding, 1 model token, 2 tool token (what tool-task rewards read)."""
    return (out.valid + out.tool_mask).astype(jnp.int32)


def tool_metrics(out: ToolSampleOutput) -> Dict[str, jax.Array]:
    calls = out.num_calls.astype(jnp.float32)
    return {
        "call_rate": jnp.mean(calls > 0),
        "calls_per_sample": jnp.mean(calls),
        "call_success": out.call_ok.sum() / jnp.maximum(out.num_calls.sum(), 1),
        "unanswered_calls": jnp.mean(out.unanswered.astype(jnp.float32)),
        "tool_token_frac": out.tool_mask.sum() / jnp.maximum(out.valid.sum(), 1),
    }


def tool_rollout(tcfg: ToolConfig) -> Rollout:
    """The step's rollout with the calculator: `tool_sample`; teacher forcing sees model AND tool
    tokens (`out.valid`) while the loss mask stays `out.mask` (model tokens only); the reward
    reads `(tokens, source)` (0 pad, 1 model, 2 tool); tool metrics per step."""
    def sample_fn(model_cfg, params, batch, rng, scfg):
        return tool_sample(model_cfg, params, batch["prompt"], batch["prompt_mask"], rng, scfg,
                           tcfg)
    return Rollout(
        sample=sample_fn,
        teacher_inputs=lambda batch, out, G: tool_completion_inputs(
            batch["prompt"], batch["prompt_mask"], out, G),
        reward_inputs=lambda out: (out.tokens, completion_source(out)),
        metrics=tool_metrics,
        transitions=lambda out: transition_ids(out.tool_mask))


# ------------------------------------------------------------------ trainer integration

ROLLOUT_KINDS = ("plain", "tool")
TOOL_TASKS = ("tool_multiplication",)  # tasks whose reward reads (tokens, source)


def rollout_kind(cfg) -> str:
    """`cfg.rollout.kind` ("plain" when the config has no rollout section)."""
    r = cfg.get("rollout")
    return "plain" if r is None else r.kind


def validate_rollout_config(c):
    """`rollout.kind` is known; "tool" needs a tool task, valid `cfg.tool` knobs, and a
    reward that reads the rollout's (tokens, source) (device, host or split)."""
    kind = rollout_kind(c)
    if kind not in ROLLOUT_KINDS:
        raise UserError(f"config rollout.kind: {kind!r}; expected one of {list(ROLLOUT_KINDS)}")
    if kind != "tool":
        return
    if c.task.name not in TOOL_TASKS:
        raise UserError(f"config rollout.kind: 'tool' needs a tool task {list(TOOL_TASKS)}, "
                        f"got task.name={c.task.name!r}")
    if c.reward.kind not in ("device", "host", "split"):
        raise UserError(f"config reward.kind: {c.reward.kind!r} is not available with "
                        "rollout.kind='tool' (use 'device', 'host' or 'split')")
    try:
        ToolConfig.from_config(c.get("tool"))
    except (TypeError, ValueError) as e:
        raise UserError(f"config tool: {e}") from e


def make_tool_eval_rows(model_cfg: ModelConfig, reward_fn, scfg: SamplingConfig,
                        tcfg: ToolConfig):
    """Jitted `rows(params, batch, rng) -> {correct, called} [B * num_samples]` per sample (the
    reward's `correct`, and whether the sample made an answered call)."""
    def run(params, batch, rng):
        out = tool_sample(model_cfg, params, batch["prompt"], batch["prompt_mask"], rng, scfg,
                          tcfg)
        rep = lambda x: jnp.repeat(x, scfg.num_samples, axis=0)
        _, aux = reward_fn(out.tokens, completion_source(out), rep(batch["target"]),
                           rep(batch["target_len"]))
        return {"correct": aux["correct"], "called": out.num_calls > 0}
    return jax.jit(run)


@functools.lru_cache(maxsize=8)
def _tool_eval_fns(model_cfg, reward_fn, max_new, n_samples, temperature, stop_tokens, tcfg):
    greedy = SamplingConfig(max_new_tokens=max_new, greedy=True, stop_tokens=stop_tokens)
    multi = SamplingConfig(max_new_tokens=max_new, num_samples=n_samples,
                           temperature=temperature, stop_tokens=stop_tokens)
    return (make_tool_eval_rows(model_cfg, reward_fn, greedy, tcfg),
            make_tool_eval_rows(model_cfg, reward_fn, multi, tcfg))


def evaluate_tool(model_cfg: ModelConfig, params, task, cfg, eval_batch,
                  rng) -> Dict[str, float]:
    """The trainer's evaluation with the tool rollout: greedy accuracy, unbiased pass@k over
    `eval.n_samples` samples at `eval.temperature`, and the call rates (share of samples with
    at least one answered call), sampled (`call_rate`) and greedy (`greedy_call_rate`); with a
    batch's `difficulty` labels, each of them per label too (`greedy_acc_d3`, `call_rate_d1`, ...).
    `rng`: the run's evaluation rng (rlpt.evaluation.rollout.eval_rng), for both decodings."""
    from rlpt.evaluation.metrics import mean_pass_at_k
    e, s = cfg.eval, cfg.sampling
    greedy, multi = _tool_eval_fns(model_cfg, task.reward, s.max_new_tokens, e.n_samples,
                                   e.temperature, tuple(s.stop_tokens),
                                   ToolConfig.from_config(cfg.get("tool")))
    g = jax.device_get(greedy(params, eval_batch, rng))
    m = jax.device_get(multi(params, eval_batch, rng))
    correct = np.asarray(m["correct"]).reshape(-1, e.n_samples)
    res = {"greedy_acc": float(np.mean(g["correct"]))}
    for k in e.ks:
        res[f"pass@{k}"] = mean_pass_at_k(correct, k)
    res["call_rate"] = float(np.mean(m["called"]))
    res["greedy_call_rate"] = float(np.mean(g["called"]))
    if "difficulty" in eval_batch:   # a mix of difficulties: all of it per difficulty label
        from rlpt.evaluation.metrics import by_difficulty
        d = np.asarray(eval_batch["difficulty"])
        res.update(by_difficulty(g["correct"], correct, d, max(e.ks)))
        called = np.asarray(m["called"]).reshape(-1, e.n_samples)
        for v in sorted(set(d.tolist())):
            res[f"call_rate_d{v}"] = float(np.mean(called[d == v]))
            res[f"greedy_call_rate_d{v}"] = float(np.mean(np.asarray(g["called"])[d == v]))
    return res
