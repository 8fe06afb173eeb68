"""The prompt version recorded with refine caches and checkpoints is derived from the prompt text: a
changed wording can never reuse old refine caches silently; an unchanged prompt keeps its label, so
caches and checkpoints written before versions carried fingerprints keep loading."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

import mindedit_core.prompting as prompting
from mindedit_core.prompting import (
    PINNED_FINGERPRINTS,
    PROMPT_LABEL,
    PROMPT_VERSION,
    prompt_fingerprint,
    prompt_texts,
    prompt_version,
)
from training.refine_cache import CacheEntry, RefineCache, load_refined


def _edited_prompting(tmp_path: Path, old: str, new: str):
    """prompting.py with one wording changed (in it or in the style texts it imports), imported as its
    own package (a fresh process would see it so)."""
    sources = {
        name: (Path(prompting.__file__).parent / name).read_text(encoding="utf-8")
        for name in ("prompting.py", "prompt_styles.py", "instruction_checks.py")
    }
    holders = [name for name, text in sources.items() if old in text]
    assert holders, old
    package = f"prompting_edited_{abs(hash(new))}"
    folder = tmp_path / package
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for name, text in sources.items():
        (folder / name).write_text(
            text.replace(old, new, 1) if name == holders[0] else text, encoding="utf-8"
        )
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module(f"{package}.prompting")
    finally:
        sys.path.remove(str(tmp_path))
    return module


def test_the_recorded_version_is_derived_from_the_text():
    assert prompt_version() == PROMPT_VERSION and PROMPT_VERSION.startswith(PROMPT_LABEL)
    assert prompt_fingerprint() == prompt_fingerprint(prompt_texts())
    fingerprint = prompt_fingerprint()
    assert PROMPT_VERSION in (PROMPT_LABEL, f"{PROMPT_LABEL}+{fingerprint}")
    # Every pinned label stands for its text; any other text under that label carries its fingerprint.
    for label, pinned in PINNED_FINGERPRINTS.items():
        assert prompt_version(label, fingerprint=pinned) == label
        assert prompt_version(label, fingerprint="0" * 12) == f"{label}+{'0' * 12}"
    assert prompt_version("mindedit-refine-v99") == f"mindedit-refine-v99+{fingerprint}"  # unpinned label


@pytest.mark.parametrize(
    "old, new",
    [
        ("You turn a short, vague image-editing request", "You rewrite a short, vague image-editing request"),
        ('MASK_OUTLINE_COLOR_NAME = "magenta"', 'MASK_OUTLINE_COLOR_NAME = "cyan"'),
        ("Write the two lines: {self.positive_key}", "Now write the two lines: {self.positive_key}"),
        ('{key}: "{_flatten(positive)}"', '{key} = "{_flatten(positive)}"'),
    ],
    ids=["system", "mask_text", "request", "answer_format"],
)
def test_any_wording_change_changes_the_version(tmp_path, old, new):
    edited = _edited_prompting(tmp_path, old, new)
    assert edited.PROMPT_LABEL == PROMPT_LABEL  # nobody bumped the label by hand
    assert edited.PROMPT_VERSION != PROMPT_VERSION
    assert f"{PROMPT_LABEL}+{edited.prompt_fingerprint()}" == edited.PROMPT_VERSION


def test_a_changed_prompt_never_reuses_old_refine_caches(tmp_path, monkeypatch, humanedit_records):
    import training.refine_data as refine_data

    records = list(humanedit_records[:3])
    cache_path = tmp_path / "refined.jsonl"
    cache = RefineCache(cache_path)
    for record in records:
        key = refine_data.job_key(record, model="m", use_mask=False, max_side=384)
        cache.append(CacheEntry(key=key, id=record.id, status="ok", model="m", prompt_version=PROMPT_VERSION,
                                instruction=record.instruction, positive="p", negative="n"))  # fmt: skip
    _, done, _ = refine_data.plan_jobs(records, cache, model="m", use_mask=False, max_side=384)
    assert done == 3 and len(load_refined(cache_path, prompt_version=PROMPT_VERSION)) == 3

    edited = _edited_prompting(tmp_path, "3. Brevity: key nouns", "3. Brevity: only key nouns")
    # the pack after the edit
    monkeypatch.setattr(refine_data, "prompt_version", lambda **_: edited.PROMPT_VERSION)
    jobs, done, _ = refine_data.plan_jobs(
        records, RefineCache(cache_path), model="m", use_mask=False, max_side=384
    )
    assert done == 0 and len(jobs) == 3  # every request is asked again under the new prompt
    assert load_refined(cache_path, prompt_version=edited.PROMPT_VERSION) == {}  # no stale training targets


def test_old_caches_and_checkpoints_of_the_same_prompt_keep_loading(tmp_path):
    """Entries recorded with a pinned bare label (before fingerprints) are read as that label's text."""
    label = next(iter(PINNED_FINGERPRINTS))
    cache_path = tmp_path / "old.jsonl"
    RefineCache(cache_path).append(CacheEntry(key="k", id="r1", status="ok", model="m", prompt_version=label,
                                              instruction="x", positive="p", negative="n"))  # fmt: skip
    version_now = prompt_version(label, fingerprint=PINNED_FINGERPRINTS[label])  # the text unchanged
    assert load_refined(cache_path, prompt_version=version_now) == {"r1": ("p", "n")}
