"""Orbax checkpoints of a TrainState under workdir/ckpt/<phase>/<step>: `Checkpointer` (a
non-finite state is never saved, `NonFiniteStateError`; a corrupt latest checkpoint falls back to
the previous one) and `all_finite`; a finished run's parameters read back on their own
(`restore_params`, with `run_model_config` from its config.json: rlpt.export, a learned reward
model in rlpt.build).

The frozen models named in `REBUILT` (the LoRA base, `frozen["base"]`) are not written: every
start rebuilds them from the config before restoring (rlpt.build), so a checkpoint holds the
adapters, the optimizer state and the rest, and `restore` takes the rebuilt ones from the state
it is given. (Other frozen models, e.g. the KL piece's full `frozen["reference"]` copy, are
saved with the state as before.)
"""
import contextlib
import io
import os
import shutil
import signal
import sys
import threading
import warnings
from typing import List, Optional

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from rlpt.errors import DiskFullError, UserError, is_disk_full, quiet_absl_logs


class NonFiniteStateError(RuntimeError):
    """A state with NaN or infinite values was about to be checkpointed."""


@jax.jit
def _all_finite(leaves):
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def all_finite(tree) -> bool:
    """Whether every floating-point leaf of `tree` is finite: on the host (numpy) when this
    process holds every leaf whole, which the checkpoint's save reads anyway, else one small
    compiled reduction (a state sharded over several processes)."""
    leaves = [x for x in jax.tree_util.tree_leaves(tree)
              if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)]
    if all(getattr(x, "is_fully_addressable", True) for x in leaves):
        return all(bool(np.isfinite(np.asarray(x)).all()) for x in leaves)
    return bool(_all_finite(leaves))


def checkpoint_steps(directory: str) -> List[int]:
    """The committed steps under a phase's checkpoint `directory`, newest first (orbax writes a
    step under a temporary name and renames it to the step number when complete)."""
    if not os.path.isdir(directory):
        return []
    return sorted((int(n) for n in os.listdir(directory) if n.isdigit()), reverse=True)


def last_complete_checkpoint(workdir: str) -> Optional[str]:
    """The newest committed checkpoint directory under workdir/ckpt/<phase>/, or None."""
    root = os.path.join(workdir, "ckpt")
    found = []
    for phase in sorted(os.listdir(root)) if os.path.isdir(root) else ():
        d = os.path.join(root, phase)
        steps = checkpoint_steps(d)
        if steps and not phase.endswith("_corrupt"):
            found.append(os.path.join(d, str(steps[0])))
    return max(found, key=os.path.getmtime) if found else None


@contextlib.contextmanager
def interrupt_after():
    """Ctrl-C (SIGINT) within the block is held until the block ends, then raised: a checkpoint
    being written is finished first (an interrupted orbax save leaves its threads printing
    tracebacks at exit, and no checkpoint)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got = []
    old = signal.signal(signal.SIGINT, lambda *_: got.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if got:
        raise KeyboardInterrupt


REBUILT = ("base",)   # frozen roles rebuilt from the config at every start: never saved


def saved_part(state):
    """`state` without the frozen models of `REBUILT` (what a checkpoint holds)."""
    frozen = getattr(state, "frozen", None)
    if not isinstance(frozen, dict) or not any(r in frozen for r in REBUILT):
        return state
    return state.replace(frozen={k: v for k, v in frozen.items() if k not in REBUILT})


def with_rebuilt(restored, state_like):
    """A restored state with the `REBUILT` frozen models of `state_like` put back."""
    frozen = getattr(state_like, "frozen", None)
    if not isinstance(frozen, dict) or not any(r in frozen for r in REBUILT):
        return restored
    return restored.replace(frozen=dict(restored.frozen,
                                        **{r: frozen[r] for r in REBUILT if r in frozen}))


class Checkpointer:
    """Orbax checkpoints of a TrainState under workdir/ckpt/<phase>/<step> (without the frozen
    models that every start rebuilds, `REBUILT`)."""

    def __init__(self, workdir: str, phase: str, max_to_keep: int = 2):
        self.directory = os.path.abspath(os.path.join(workdir, "ckpt", phase))
        self.max_to_keep = max_to_keep
        self.mngr = self._manager()

    def _manager(self) -> ocp.CheckpointManager:
        with quiet_absl_logs():   # a garbled step's metadata: restore() reports it
            return ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(max_to_keep=self.max_to_keep, create=True,
                                                     enable_async_checkpointing=False))

    def latest_step(self) -> Optional[int]:
        with quiet_absl_logs():
            return self.mngr.latest_step()

    def save(self, step: int, state) -> None:
        """Saves `state` as `step`; a state with a non-finite float is refused (NonFiniteState
        error), so the newest checkpoint on disk is always one a run can continue from."""
        state = saved_part(state)
        if not all_finite(state):
            raise NonFiniteStateError(f"{self.directory}: refusing to checkpoint step {step}: "
                                      "the state holds NaN or infinite values")
        held = io.StringIO()   # what the save prints: shown unless it failed on a full disk
        try:
            with contextlib.redirect_stderr(held), interrupt_after():
                self.mngr.save(step, args=ocp.args.StandardSave(state), force=True)
                self.mngr.wait_until_finished()
        except Exception as e:  # noqa: BLE001 - tensorstore reports a full disk as a ValueError
            if not is_disk_full(e):
                sys.stderr.write(held.getvalue())
                raise
            # a full disk: tensorstore's callbacks into orbax's closed event loop printed one
            # "Event loop is closed" traceback per pending write; DiskFullError says it all
            for name in os.listdir(self.directory):   # free what the failed save wrote
                if name.startswith(f"{step}.") and "tmp" in name:
                    shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
            raise DiskFullError(f"disk full: could not write checkpoint step {step} under "
                                f"{self.directory}") from e
        sys.stderr.write(held.getvalue())

    def restore(self, state_like, step: Optional[int] = None):
        """The state saved at `step`, or (None) at the newest step that reads back.

        A corrupt newest checkpoint (unreadable files, garbled metadata) is not fatal: the
        previous steps are tried in turn; the first that restores is returned, with a warning
        naming the corrupt and the restored steps, and each corrupt newer step is moved to
        ckpt/<phase>_corrupt/ (so that step can be saved again). If no step restores, raises
        RuntimeError naming each step's error. An explicit `step` is restored or raises.
        """
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct,
                                          saved_part(state_like))
        load = lambda s: with_rebuilt(
            self.mngr.restore(s, args=ocp.args.StandardRestore(abstract)), state_like)
        if step is not None:
            return load(step)
        errors = []
        for s in sorted(self.mngr.all_steps(), reverse=True):
            try:
                with quiet_absl_logs():  # orbax logs each unreadable file; `errors` names them
                    state = load(s)
            except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many kinds
                errors.append((s, f"{type(e).__name__}: {str(e)[:200]}"))
                with quiet_absl_logs():
                    self._reset()  # a failed restore can leave the manager confused
                continue
            if errors:
                moved = [self._move_aside(bad) for bad, _ in errors]
                warnings.warn(
                    f"{self.directory}: checkpoint step {errors[0][0]} is corrupt "
                    f"({errors[0][1]}); restored step {s} instead. Corrupt steps "
                    f"{[bad for bad, _ in errors]} moved to {moved}")
            return state
        detail = "; ".join(f"step {s}: {e}" for s, e in errors) or "no checkpoints"
        raise UserError(f"{self.directory}: no checkpoint could be restored ({detail}); move "
                        "that directory aside to start its phase over, or use another workdir")

    def _move_aside(self, step: int) -> str:
        """Moves the step's directory to ckpt/<phase>_corrupt/<step>[.<n>]; returns the path."""
        dest_dir = self.directory + "_corrupt"
        os.makedirs(dest_dir, exist_ok=True)
        dest, n = os.path.join(dest_dir, str(step)), 1
        while os.path.exists(dest):
            dest, n = os.path.join(dest_dir, f"{step}.{n}"), n + 1
        shutil.move(os.path.join(self.directory, str(step)), dest)
        self._reset()
        return dest

    def _reset(self) -> None:
        """Closes the orbax manager and opens a fresh one (re-reading the steps on disk)."""
        try:
            self.mngr.close()
        except Exception:  # noqa: BLE001 - closing a manager that failed must not mask that
            pass
        self.mngr = self._manager()


def run_model_config(run: dict):
    """The ModelConfig a run trained (its config.json: a preset or a checkpoint)."""
    from rlpt.models import get_model_config
    from rlpt.models.checkpoints import checkpoint_config
    m = run["model"]
    if m.get("checkpoint"):
        return checkpoint_config(m["checkpoint"], m.get("dtype", "float32"))
    extra = {"vocab_size": int(m["vocab_size"])} if m.get("vocab_size") else {}
    return get_model_config(m["preset"], dtype=m.get("dtype", "float32"), **extra)


def restore_params(workdir: str, cfg, phase: str = "", step: int | None = None,
                   shapes=None):
    """(phase, step, params) of the newest readable checkpoint of a run's `phase` (default: the
    last of rl, sft that has one; `step`: that step): only the `params` subtree is read (not the
    optimizer state or frozen models), as float32 numpy arrays; `shapes` (default: the model's
    parameters) says which leaves (a LoRA run's adapters, a reward model's backbone and head).
    rlpt.export writes them out; a learned reward model is read with it (rlpt.build)."""
    from rlpt.models import init_params

    root = os.path.join(os.path.abspath(workdir), "ckpt")
    phases = [phase] if phase else [p for p in ("rl", "sft")
                                    if checkpoint_steps(os.path.join(root, p))]
    if not phases:
        raise UserError(f"{workdir}: no checkpoints under {root} (phases rl, sft): use a run "
                        "that saved checkpoints (its ckpt_every)")
    directory = os.path.join(root, phases[0])
    steps = [step] if step is not None else checkpoint_steps(directory)
    if not steps:
        raise UserError(f"{directory}: no checkpoint steps")
    if shapes is None:
        shapes = jax.eval_shape(lambda: init_params(cfg, jax.random.PRNGKey(0)))
    target = {"params": jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype),
                                               shapes)}
    restore_args = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray),
                                          target)
    errors = []
    for s in steps:
        path = os.path.join(directory, str(s), "default")
        try:
            out = ocp.PyTreeCheckpointer().restore(path, args=ocp.args.PyTreeRestore(
                item=target, restore_args=restore_args, partial_restore=True))
        except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many kinds
            errors.append(f"step {s}: {type(e).__name__}: {' '.join(str(e).split())[:300]}")
            continue
        if errors:
            warnings.warn(f"{directory}: newer checkpoints unreadable ({'; '.join(errors)}); "
                          f"reading step {s}")
        return phases[0], s, out["params"]
    raise UserError(f"{directory}: no checkpoint restores the parameters of the run's model "
                    f"({cfg.num_params():,} params; {'; '.join(errors)})")
