"""Numpy references and batch helpers shared by the loss tests (tests/losses/, tests/algorithms/,
tests/pieces/). A plain module next to conftest.py: pytest puts tests/ on sys.path when it
imports conftest.py (prepend import mode), so `from loss_refs import ...` works from every
subdirectory, whichever file an xdist worker imports first."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rlpt.registry import get


# ----------------------------------------------------------------------------- numpy references

def np_clip_tok(logp, old, A, el, eh, dual=None):
    ratio = np.exp(logp - old)
    l1 = -A * ratio
    l2 = -A * np.clip(ratio, 1 - el, 1 + eh)
    loss = np.maximum(l1, l2)
    if dual is not None:
        loss = np.where(A < 0, np.minimum(loss, -A * dual), loss)
    return loss


def np_k3(logp, ref):
    d = ref - logp
    return np.exp(d) - d - 1


def np_agg(l, m, mode, l_norm=None):
    if mode == "token_mean":
        return (l * m).sum() / m.sum()
    if mode == "seq_mean_token_sum_norm":
        return (l * m).sum() / (l.shape[0] * (l.shape[1] if l_norm is None else l_norm))
    rows = [i for i in range(l.shape[0]) if m[i].sum() > 0]
    per = [(l[i] * m[i]).sum() / (m[i].sum() if mode == "seq_mean_token_mean" else 1) for i in rows]
    return np.mean(per)


# ------------------------------------------------------------------------------- batch helpers

def lengths_mask(lengths, T):
    return (np.arange(T)[None, :] < np.asarray(lengths)[:, None]).astype(np.float64)


def make_batch(seed, N=4, T=5, spread=0.3, lengths=None):
    rng = np.random.default_rng(seed)
    old = -rng.random((N, T)) * 2 - 0.1
    lengths = rng.integers(1, T + 1, size=N) if lengths is None else lengths
    return dict(logp=old + rng.normal(size=(N, T)) * spread, old_logp=old,
                ref_logp=old + rng.normal(size=(N, T)) * 0.2,
                advantages=np.repeat(rng.normal(size=(N, 1)), T, axis=1),
                mask=lengths_mask(lengths, T), entropy=rng.random((N, T)),
                rewards=rng.integers(0, 2, size=N).astype(np.float64),
                teacher_logp=old + rng.normal(size=(N, T)) * 0.3)


def sft_part(seed, M=3, T2=4):
    """The second part of a two-part loss's batch: log-probs and mask of M supervised rows."""
    rng = np.random.default_rng(seed)
    return dict(sft_logp=-rng.random((M, T2)) * 3, sft_mask=lengths_mask([4, 2, 3], T2))


def every_loss_batch(seed=19):
    """A batch every registered loss builds from (tests/algorithms/test_registry.py): policy
    rows, values and returns (PPO), a keep mask, a step, an SFT part, MGRPO's layer-2 rows and
    LightningRL's transition of each token, as jax arrays (float32 floats)."""
    b = make_batch(seed, N=8, T=4, spread=0.5)
    rng = np.random.default_rng(seed)
    b.update(values=rng.normal(size=(8, 4)), old_values=rng.normal(size=(8, 4)),
             returns=rng.normal(size=(8, 4)), keep=np.ones(8), step=np.array(3),
             transitions=np.cumsum(rng.random((8, 4)) < 0.3, axis=1).astype(np.int32))
    b.update(sft_part(seed))
    b.update({f"layer2_{k}": v for k, v in make_batch(seed + 1, N=8, T=3).items()})
    return {k: jnp.asarray(v, jnp.float32) if np.asarray(v).dtype.kind == "f" else jnp.asarray(v)
            for k, v in b.items()}


def to_jax(batch):
    return {k: jnp.asarray(v) for k, v in batch.items()}


def cfg(**kw):
    return ml_collections.ConfigDict(kw)


def loss_and_grad(name, batch, c):
    """(loss, metrics, d loss / d logp) of a registered loss, one jit."""
    fn = get("loss", name)
    jb = to_jax(batch)

    def f(lp):
        return fn({**jb, "logp": lp}, c)

    (loss, metrics), g = jax.jit(jax.value_and_grad(f, has_aux=True))(jb["logp"])
    return float(loss), metrics, np.asarray(g)


def odd_token_reward(frozen, tokens, mask, target, target_len):
    """A step reward (`build_rl(..., reward=)`): the share of odd tokens in each completion,
    graded rewards that differ within every group (an untrained model scores 0 on arithmetic,
    which leaves no advantage and no gradient)."""
    hits = ((tokens % 2 == 1) * mask).sum(1)
    return (hits / jnp.maximum(mask.sum(1), 1)).astype(jnp.float32), {}
