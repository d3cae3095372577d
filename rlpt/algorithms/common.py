"""Token-row helpers shared by the algorithm extras: packing and stop-token stripping.

Prompts are LEFT-padded (valid tokens end at the last column, as the sampler needs: it reads the
next-token logits at the last column); completions are RIGHT-padded (valid tokens start at column
0, as rewards and teacher forcing expect). Rows built by concatenating pieces have holes, so they
are re-packed with a stable sort on validity, which keeps the order of the valid tokens.
"""
import jax.numpy as jnp


def pack(tokens, valid, side: str, pad_id: int = 0, others=()):
    """Moves each row's valid entries to the `side` end ("right": left padding, for prompts;
    "left": right padding, for completions), keeping their order; padded slots get `pad_id`.
    Arrays in `others` ([rows, L, ...] like `tokens`) are permuted the same way.
    Returns `(tokens, valid, *others)`."""
    if side not in ("left", "right"):
        raise ValueError(f"pack side must be 'left' or 'right', got {side!r}")
    v = valid.astype(bool)
    key = v.astype(jnp.int32) if side == "right" else (~v).astype(jnp.int32)
    order = jnp.argsort(key, axis=1, stable=True)
    take = lambda x: jnp.take_along_axis(x, order, axis=1)
    v = take(v)
    out = [jnp.where(v, take(tokens), pad_id).astype(tokens.dtype), v]
    return tuple(out + [take(x) for x in others])


def not_stop(tokens, stop_tokens):
    """Bool mask of tokens that are not stop tokens."""
    return ~jnp.isin(tokens, jnp.asarray(tuple(stop_tokens), jnp.int32))


def fixed_tokens(ids, rows: int):
    """A fixed token sequence (e.g. an instruction) broadcast to `[rows, len(ids)]` int32."""
    ids = jnp.asarray(tuple(int(i) for i in ids), jnp.int32).reshape(1, -1)
    return jnp.broadcast_to(ids, (rows, ids.shape[1]))
