"""rlpt: reinforcement-learning post-training of language models in JAX."""
from setuptools import find_packages, setup

setup(
    name="rlpt",
    version="0.1.0",
    description="RL post-training of language models as one compiled XLA program (JAX).",
    packages=find_packages(include=["rlpt", "rlpt.*"]),
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.4.30",
        "flax>=0.8",
        "optax>=0.2",
        "orbax-checkpoint>=0.5",
        "chex>=0.1.86",
        "ml-collections>=0.1.1",
        "numpy",
        "tqdm",
        "matplotlib",
        "tokenizers>=0.15",
        "safetensors>=0.4",
        "gguf>=0.10",  # llama.cpp's GGUF reader (rlpt.models.gguf)
        "jinja2>=3.1",  # chat templates (rlpt.tokenizers)
    ],
    extras_require={
        "test": [
            "pytest",
            "pytest-xdist>=3.8",   # --no-loadscope-reorder (pytest.ini)
            "torch==2.13.0",  # CPU build on local disk; never an unpinned torch.
            "transformers>=4.40",
            "accelerate",  # transformers reads GGUF files only with it (tests/test_smollm2.py)
            "reasoning-gym>=0.1.19,<0.2",   # tests/test_env_tasks.py (the envs extra)
            "verifiers==0.4.0",   # tests/test_env_verifiers.py (the verifiers extra)
            "textarena>=0.7,<0.8",   # tests/test_env_tasks.py (the textarena extra)
        ],
        "envs": ["reasoning-gym>=0.1.19,<0.2"],   # rlpt.envs.reasoning_gym
        "verifiers": ["verifiers==0.4.0"],
        "textarena": ["textarena>=0.7,<0.8"],   # rlpt.envs.textarena_env   # rlpt.envs.verifiers_env (semi-internal API: pinned)
        "tfds": ["tensorflow-datasets", "array-record"],
        "wandb": ["wandb"],
        "math": ["math-verify"],
        "trl": ["torch==2.13.0", "transformers>=4.40", "trl"],
        # re-executing notebooks/ to refresh their saved outputs (`jupyter execute --inplace
        # notebooks/quickstart.ipynb`); the tests run the notebooks without these
        "notebook": ["nbclient>=0.10", "nbformat>=5.9", "ipykernel>=6"],
    },
)
