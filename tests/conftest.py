"""Shared pytest set-up.

Tests never reach a model hub: the hub libraries are switched offline before anything imports them,
so an accidental download fails loudly instead of hanging or succeeding by chance.
Area fixtures live in their own plugin modules (tests/fixtures_*.py), listed below.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["DIFFUSERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = [
    "fixtures_paths",
    "fixtures_comfyui",
    "fixtures_mllm",
    "fixtures_ipadapter",
    "fixtures_training",
    "fixtures_eval",
    "fixtures_remote",
]
