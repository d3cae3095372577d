"""GSM8K (Cobbe et al. 2021, arXiv 2110.14168): a jsonl reader and a TFDS builder.

The data is read from a directory holding `train.jsonl` and `test.jsonl`, one
`{"question": str, "answer": str}` object per line, where `answer` is a worked solution whose last
line is `#### <final answer>`. The directory is, in order of precedence:

1. the `source_dir` argument,
2. the environment variable `RLPT_GSM8K_DIR`,
3. `../shared/data/gsm8k` relative to the repository root.

Every row becomes `{"question", "solution", "answer"}`: `solution` is the full worked solution as
given, `answer` the text after its last `####`, to the end of that line (e.g. `"1,200"`;
normalisation is left to `rlpt.rewards.math_answer`).

`build_gsm8k(data_dir)` prepares the TFDS dataset `rlpt_gsm8k` (array_record files, original row
order kept) and returns random-access `tfds` data sources. Neither building nor reading needs
TensorFlow. The prepared copy records a fingerprint of its source files (`source_fingerprint`:
the source directory, and each file's size and sha256) in `FINGERPRINT_FILE` beside it; it is
reused only while the source files' contents match. A copy prepared from other or since-edited
files (or with no fingerprint) is re-prepared with a warning, or with `on_stale="error"` refused
with an error naming both the prepared copy and the source.
"""
import functools
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Dict, Iterator, List, Union

from rlpt.errors import UserError
from rlpt.rewards.math_answer import extract_hash

ENV_VAR = "RLPT_GSM8K_DIR"
FINGERPRINT_FILE = "rlpt_source_fingerprint.json"
SPLITS = ("train", "test")
_REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = _REPO_ROOT.parent / "shared" / "data" / "gsm8k"


class Gsm8kFormatError(UserError):
    """A malformed GSM8K jsonl line; the message starts with `path:line:` (1-based)."""


def resolve_source_dir(source_dir: Union[str, Path, None] = None) -> Path:
    """The GSM8K directory: the argument, else $RLPT_GSM8K_DIR, else ../shared/data/gsm8k."""
    if source_dir is not None:
        path, origin = Path(source_dir), "the source_dir argument"
    elif os.environ.get(ENV_VAR):
        path, origin = Path(os.environ[ENV_VAR]), f"${ENV_VAR}"
    else:
        path, origin = DEFAULT_DIR, "the default (../shared/data/gsm8k from the repository root)"
    missing = [f"{s}.jsonl" for s in SPLITS if not (path / f"{s}.jsonl").is_file()]
    if missing:
        raise FileNotFoundError(
            f"GSM8K directory {path} (from {origin}) lacks {', '.join(missing)}; pass source_dir "
            f"or set ${ENV_VAR} to a directory holding train.jsonl and test.jsonl")
    return path


def iter_jsonl(path: Union[str, Path]) -> Iterator[Dict[str, str]]:
    """Yields `{"question", "solution", "answer"}` per non-blank line of a GSM8K jsonl file.

    Raises Gsm8kFormatError naming the file and 1-based line for invalid JSON, a missing or
    non-string `question`/`answer` field, or a solution without a non-empty `####` line.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise Gsm8kFormatError(
                    f"{where}: invalid JSON ({e.msg} at column {e.colno})") from e
            if not isinstance(obj, dict):
                raise Gsm8kFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
            for key in ("question", "answer"):
                if not isinstance(obj.get(key), str):
                    raise Gsm8kFormatError(f"{where}: field {key!r} is missing or not a string")
            answer = extract_hash(obj["answer"])
            if not answer:
                raise Gsm8kFormatError(
                    f"{where}: the solution has no '#### <final answer>' line "
                    f"(ends with {obj['answer'][-60:]!r})")
            yield {"question": obj["question"], "solution": obj["answer"], "answer": answer}


def read_jsonl(path: Union[str, Path]) -> List[Dict[str, str]]:
    """All rows of a GSM8K jsonl file (see `iter_jsonl`)."""
    return list(iter_jsonl(path))


def read_split(split: str, source_dir: Union[str, Path, None] = None) -> List[Dict[str, str]]:
    """All rows of `train` or `test` from the resolved GSM8K directory."""
    if split not in SPLITS:
        raise ValueError(f"unknown GSM8K split {split!r}; known splits: {list(SPLITS)}")
    return read_jsonl(resolve_source_dir(source_dir) / f"{split}.jsonl")


@functools.lru_cache(maxsize=None)
def _builder_class():
    """Defines (once) and returns the TFDS builder; tfds is imported only when needed."""
    import tensorflow_datasets as tfds  # optional extra: pip install -e .[tfds]

    class RlptGsm8k(tfds.core.GeneratorBasedBuilder):
        """GSM8K from local jsonl files: question, solution (worked), answer (after `####`)."""

        VERSION = tfds.core.Version("1.0.0")
        RELEASE_NOTES = {"1.0.0": "question/solution/answer from the original jsonl files."}
        # No download checksums to look up next to the code. Left to tfds, the lookup imports the
        # `importlib_resources` backport, which tfds only installs on Python < 3.9.
        code_path = None

        def __init__(self, *, source_dir=None, **kwargs):
            self._source_dir = resolve_source_dir(source_dir)
            kwargs.setdefault("file_format", "array_record")
            super().__init__(**kwargs)

        def _info(self):
            text = tfds.features.Text
            return tfds.core.DatasetInfo(
                builder=self,
                description=__doc__,
                features=tfds.features.FeaturesDict(
                    {"question": text(), "solution": text(), "answer": text()}),
                homepage="https://github.com/openai/grade-school-math",
                disable_shuffling=True,  # keep file order: row i of the source is record i
            )

        def _split_generators(self, dl_manager):
            return {s: self._generate_examples(self._source_dir / f"{s}.jsonl") for s in SPLITS}

        def _generate_examples(self, path):
            for i, row in enumerate(iter_jsonl(path)):
                yield i, row

    return RlptGsm8k


def source_fingerprint(source_dir: Union[str, Path]) -> Dict:
    """`{"source_dir": absolute path, "files": {name: {"size", "sha256"}}}` of the split files.

    Only `files` decides whether a prepared copy is current (the same bytes in another directory
    are the same data); `source_dir` is kept to name where a copy came from.
    """
    files = {}
    for split in SPLITS:
        path = Path(source_dir) / f"{split}.jsonl"
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        files[path.name] = {"size": path.stat().st_size, "sha256": digest.hexdigest()}
    return {"source_dir": str(Path(source_dir).resolve()), "files": files}


def _recorded_fingerprint(prepared: Path) -> Union[Dict, None]:
    try:
        with open(prepared / FINGERPRINT_FILE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def build_gsm8k(data_dir: Union[str, Path], source_dir: Union[str, Path, None] = None,
                on_stale: str = "rebuild"):
    """Prepares `rlpt_gsm8k` (array_record) under `data_dir`; returns {split: data source}.

    Each source supports `len(src)` and `src[i]`, a dict of `question`, `solution`, `answer` as
    utf-8 `bytes` (see `decode_row`), in the source files' row order. A prepared copy whose
    recorded source fingerprint differs from the source files' (or that has none) is stale:
    `on_stale="rebuild"` deletes and re-prepares it with a warning, `"error"` raises ValueError
    naming the prepared copy, the source it came from and the source now given.
    """
    if on_stale not in ("rebuild", "error"):
        raise ValueError(f"on_stale={on_stale!r}; expected 'rebuild' or 'error'")
    builder = _builder_class()(data_dir=str(data_dir), source_dir=source_dir)
    current = source_fingerprint(builder._source_dir)
    prepared = Path(builder.data_dir)
    if builder.is_prepared():
        recorded = _recorded_fingerprint(prepared)
        if recorded is None or recorded.get("files") != current["files"]:
            origin = (f"from {recorded.get('source_dir')} with other file contents"
                      if recorded is not None else "with no source fingerprint")
            msg = (f"GSM8K prepared copy {prepared} was built {origin}; the source "
                   f"{current['source_dir']} differs")
            if on_stale == "error":
                raise ValueError(f"{msg}. Use another data_dir, or on_stale='rebuild'")
            warnings.warn(f"{msg}; re-preparing it")
            shutil.rmtree(prepared)
            builder = _builder_class()(data_dir=str(data_dir), source_dir=source_dir)
    if not builder.is_prepared():
        builder.download_and_prepare()
        tmp = prepared / (FINGERPRINT_FILE + ".tmp")
        tmp.write_text(json.dumps(current, indent=2))
        os.replace(tmp, prepared / FINGERPRINT_FILE)
    return {split: builder.as_data_source(split=split) for split in SPLITS}


def decode_row(record) -> Dict[str, str]:
    """A data-source record with `bytes` text fields as a dict of `str`."""
    return {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in record.items()}
