"""Turn records into model inputs: prompt exactly as at inference, answer supervised, targets attached.

The prompt is encoded by the family's `MLLMFamily.encode_prompt`, the one function inference
(`mindedit_core.mllm.MindEditMLLM.prepare_inputs`) calls too (image preparation, the family's chat
messages, generation prompt appended, processor), so what the fine-tuned model learns is what it sees
at inference (tests/test_train_inference_parity.py). The answer is `format_refinement(positive, negative)` followed by the
family's end-of-turn token (`MLLMFamily.end_of_answer`, ``<|im_end|>`` for the Qwen-based families, so the
model learns to stop); its token ids are appended to the prompt ids, exactly the sequence generation
produces. Labels are -100 everywhere except the answer.

Image tensors are the family's (`MLLMFamily.image_input_keys`) and are batched its way
(`MLLMFamily.batch_image_inputs`): e.g. LLaVA-OneVision's tiles padded into ``[B, tiles, C, H, W]``
(the model strips the padding using ``image_sizes``), Qwen's flat patch rows concatenated with one
``image_grid_thw`` row per image.

``prompt_mask`` marks the prompt positions: the vision head pools over those only, as at inference
(where no answer exists yet). Under causal attention the prompt's hidden states do not depend on the
answer, so one forward serves both losses.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from mindedit_core.mllm.families import FAMILIES, MLLMFamily, family_of_processor
from mindedit_core.prompting import format_refinement

from .data.record import EditRecord
from .target_store import TargetStore

IGNORE_INDEX = -100


def end_token_ids(tokenizer, end_of_answer: str) -> list[int]:
    """The id of the family's end-of-turn token (`MLLMFamily.end_of_answer`); the tokenizer's eos when
    that is not a single token."""
    ids = tokenizer(end_of_answer, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        if tokenizer.eos_token_id is None:
            raise ValueError(f"The tokenizer has no single {end_of_answer!r} token and no eos token.")
        return [int(tokenizer.eos_token_id)]
    return [int(ids[0])]


class EditTrainDataset(Dataset):
    """Encodes one record at a time (image decoding and tokenising happen in DataLoader workers)."""

    def __init__(
        self,
        records: Sequence[EditRecord],
        processor,
        *,
        with_answer: bool,
        targets: TargetStore | None,
        target_kind: str,
        use_mask: bool,
        max_side: int | None,
        family: MLLMFamily | None = None,
    ) -> None:
        self.records = records
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.with_answer = with_answer
        self.targets = targets
        self.target_kind = target_kind
        self.use_mask = use_mask
        self.max_side = max_side
        # The model's family when the caller knows it (two families may share a processor class).
        self.family = family or family_of_processor(processor)
        self._end_ids = end_token_ids(self.tokenizer, self.family.end_of_answer)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        return self.encode(self.records[index])

    def encode(self, record: EditRecord) -> dict:
        mask = record.load_mask() if self.use_mask else None
        enc = self.family.encode_prompt(
            self.processor, record.load_source(), record.instruction, mask=mask, max_side=self.max_side
        )
        prompt_ids = enc["input_ids"][0]
        answer_ids = torch.empty(0, dtype=prompt_ids.dtype)
        if self.with_answer:
            if not record.has_refined:
                raise ValueError(f"Record {record.id!r} has no refined prompts to supervise.")
            answer = format_refinement(record.refined_positive or "", record.refined_negative or "")
            ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"] + self._end_ids
            answer_ids = torch.tensor(ids, dtype=prompt_ids.dtype)
        input_ids = torch.cat([prompt_ids, answer_ids])
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        labels[len(prompt_ids) :] = answer_ids
        sample = {
            "id": record.id,
            "input_ids": input_ids,
            "labels": labels,
            "prompt_len": len(prompt_ids),
            "family": self.family.model_type,
            **self.family.per_sample_image_inputs(enc),
        }
        sample["token_aligned"] = tuple(k for k in self.family.token_aligned_keys if k in enc)
        for key in sample["token_aligned"]:  # the answer tokens are text (type 0)
            sample[key] = torch.cat([enc[key][0], torch.zeros(len(answer_ids), dtype=enc[key].dtype)])
        if self.targets is not None:
            sample["target"] = self.targets.get(record.id, self.target_kind)
        return sample


def collate(samples: list[dict], *, pad_token_id: int) -> dict:
    """Right-pad token sequences; batch the image tensors the family's way (see the module docstring)."""
    longest = max(s["input_ids"].shape[0] for s in samples)
    batch = len(samples)
    input_ids = torch.full((batch, longest), pad_token_id, dtype=samples[0]["input_ids"].dtype)
    labels = torch.full((batch, longest), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((batch, longest), dtype=torch.long)
    prompt_mask = torch.zeros((batch, longest), dtype=torch.long)
    for i, s in enumerate(samples):
        n = s["input_ids"].shape[0]
        input_ids[i, :n] = s["input_ids"]
        labels[i, :n] = s["labels"]
        attention_mask[i, :n] = 1
        prompt_mask[i, : s["prompt_len"]] = 1
    aligned = {}
    for key in samples[0]["token_aligned"]:
        aligned[key] = torch.zeros((batch, longest), dtype=samples[0][key].dtype)
        for i, s in enumerate(samples):
            aligned[key][i, : s[key].shape[0]] = s[key]
    out = {
        "ids": [s["id"] for s in samples],
        "input_ids": input_ids,
        "labels": labels,
        "attention_mask": attention_mask,
        "prompt_mask": prompt_mask,
        **aligned,
        **FAMILIES[samples[0]["family"]].batch_image_inputs(samples),
    }
    if "target" in samples[0]:
        out["target"] = torch.stack([s["target"] for s in samples])
    return out
