"""The learning benchmark's inputs and baselines (used by `bench.bench_learning` and its test).

- data: `devkit.fixtures.learning_dataset` (JSONL, four edit kinds), split with the package's split
  tool (`training.data.split`, written to ``<work>/split.json``);
- targets: `training.build_targets` with the fixed stand-in encoder `devkit.fixtures.pixel_encoder`;
- baselines, all held out: the mean training target, the source image's embedding, the label-oracle
  (mean training target of the same target label: colour and position, or empty), and a closed-form
  ridge probe on the frozen (untrained) layer-m states, mean-pooled over the user turn or over the whole
  prompt, its ridge strength chosen by 5-fold cross-validation on the training records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

FAMILIES = ("qwen2_5_vl", "llava_onevision")
NUM_RECORDS = 288
TEST_SIZE = 72
RIDGE_STRENGTHS = (1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


@dataclass
class Bench:
    work: Path
    data: Path
    split: Path
    targets: Path
    train_ids: list[str]
    test_ids: list[str]
    labels: dict[str, str]
    kinds: dict[str, str]


def model_folder(family: str) -> Path:
    from devkit.fixtures import cache_root
    from devkit.fixtures.llava_onevision import tiny_llava_onevision
    from devkit.fixtures.qwen_vl import tiny_qwen2_5_vl

    if family == "qwen2_5_vl":
        return tiny_qwen2_5_vl(cache_root())
    if family == "llava_onevision":
        return tiny_llava_onevision(cache_root())
    raise ValueError(f"Unknown benchmark family {family!r}: expected one of {FAMILIES}.")


def prepare(work: str | Path, *, num_records: int = NUM_RECORDS, test_size: int = TEST_SIZE) -> Bench:
    """Dataset, split manifest and stand-in targets under ``work`` (each built once)."""
    from devkit.fixtures import cache_root
    from devkit.fixtures.learning_dataset import build_learning_dataset
    from devkit.fixtures.pixel_encoder import PixelPoolEncoder
    from training.build_targets import build_targets
    from training.data.loader import load_records
    from training.data.split import ensure_manifest

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    data = build_learning_dataset(cache_root() / "datasets", num_records=num_records)
    records = load_records("jsonl", data)
    split = work / "split.json"
    manifest = ensure_manifest(
        [r.id for r in records], split, dataset_format="jsonl", test_size=test_size, train_size=None
    )
    targets = work / "targets"
    if not (targets / "targets.json").is_file():
        build_targets(records, None, targets, kinds=["plain"], encoder=PixelPoolEncoder(), progress=False)
    lines = [json.loads(line) for line in (data / "metadata.jsonl").read_text().splitlines() if line]
    return Bench(
        work=work,
        data=data,
        split=split,
        targets=targets,
        train_ids=sorted(manifest.train),
        test_ids=sorted(manifest.test),
        labels={line["id"]: line["label"] for line in lines},
        kinds={line["id"]: line["edit_type"] for line in lines},
    )


def mean_cos(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(F.cosine_similarity(pred.float(), target.float(), dim=-1).mean())


def simple_baselines(bench: Bench) -> dict[str, float]:
    """Held-out mean cosine of the baselines that need no model."""
    from devkit.fixtures.pixel_encoder import PixelPoolEncoder
    from training.data.loader import load_records
    from training.target_store import TargetStore

    store = TargetStore(bench.targets)
    train, test = store.stack(bench.train_ids, "plain"), store.stack(bench.test_ids, "plain")
    mean = train.mean(dim=0)
    by_label: dict[str, list[torch.Tensor]] = {}
    for rid, target in zip(bench.train_ids, train):
        by_label.setdefault(bench.labels[rid], []).append(target)
    label_mean = {k: torch.stack(v).mean(dim=0) for k, v in by_label.items()}
    oracle = torch.stack([label_mean.get(bench.labels[rid], mean) for rid in bench.test_ids])
    records = {r.id: r for r in load_records("jsonl", bench.data)}
    encoder = PixelPoolEncoder()
    source = encoder.encode([records[rid].load_source() for rid in bench.test_ids], ["plain"])["plain"]
    return {
        "mean training target": mean_cos(mean.expand_as(test), test),
        "source image's embedding": mean_cos(source, test),
        "label oracle (same-label mean target)": mean_cos(oracle, test),
    }


@dataclass
class FrozenStates:
    """Layer-m states of the untrained model for every record (the head's input, computed once)."""

    layer: int
    hidden_size: int
    turn_start_id: int
    hidden: dict[str, torch.Tensor]  # id -> [T, H] (prompt positions)
    input_ids: dict[str, torch.Tensor]  # id -> [T]

    def pooled(self, pool: str) -> dict[str, torch.Tensor]:
        """Mean over the user turn (``user_turn``) or the whole prompt (``prompt``), per record."""
        from mindedit_core.vision_head import user_turn_mask

        out = {}
        for rid, hidden in self.hidden.items():
            if pool == "user_turn":
                mask = user_turn_mask(self.input_ids[rid][None], None, self.turn_start_id)[0]
                hidden = hidden[mask]
            out[rid] = hidden.mean(dim=0)
        return out

    def user_turn(self, rid: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The states and ids of the user turn only (what a ``user_turn`` head reads)."""
        from mindedit_core.vision_head import user_turn_mask

        mask = user_turn_mask(self.input_ids[rid][None], None, self.turn_start_id)[0]
        return self.hidden[rid][mask], self.input_ids[rid][mask]


@torch.no_grad()
def frozen_states(bench: Bench, family: str, ids: list[str] | None = None) -> FrozenStates:
    """Layer-m states of the untrained model (the same hook and prompt as training and inference)."""
    from mindedit_core.mllm import capture_layer, family_of
    from mindedit_core.vision_head import turn_start_token_id
    from training.collate import EditTrainDataset, collate
    from training.data.loader import load_records
    from training.model_setup import load_base_model, num_layers

    model, processor = load_base_model(model_folder(family), weights_dtype=torch.float32)
    model.eval()
    family = family_of(model)
    layer = family.default_layer(num_layers(model))  # as training resolves it
    wanted = set(ids) if ids is not None else None
    records = [r for r in load_records("jsonl", bench.data) if wanted is None or r.id in wanted]
    dataset = EditTrainDataset(
        records,
        processor,
        with_answer=False,
        targets=None,
        target_kind="plain",
        use_mask=False,
        max_side=None,
    )
    states = FrozenStates(
        layer=layer,
        hidden_size=family.text_dims(model)[0],
        turn_start_id=turn_start_token_id(getattr(processor, "tokenizer", processor), family.turn_start),
        hidden={},
        input_ids={},
    )
    for index, record in enumerate(records):
        batch = collate([dataset[index]], pad_token_id=0)
        images = {
            k: v
            for k, v in batch.items()
            if torch.is_tensor(v) and k not in ("input_ids", "attention_mask", "labels", "prompt_mask")
        }
        with capture_layer(model, layer) as capture:
            model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **images)
        states.hidden[record.id] = capture.hidden[0].float().clone()
        states.input_ids[record.id] = batch["input_ids"][0].clone()
    return states


def _padded(states: FrozenStates, ids: list[str], pool: str):
    """``(hidden [N,T,H], mask [N,T], input_ids [N,T])``; a user-turn head gets its turn only (the
    positions it masks out anyway are dropped, which makes the frozen tier cheap)."""
    rows = [
        states.user_turn(i) if pool == "user_turn" else (states.hidden[i], states.input_ids[i]) for i in ids
    ]
    longest = max(h.shape[0] for h, _ in rows)
    hidden = torch.zeros(len(rows), longest, states.hidden_size)
    mask = torch.zeros(len(rows), longest, dtype=torch.long)
    input_ids = torch.zeros(len(rows), longest, dtype=torch.long)
    for k, (h, t) in enumerate(rows):
        hidden[k, : h.shape[0]], mask[k, : h.shape[0]], input_ids[k, : h.shape[0]] = h, 1, t
    return hidden, mask, input_ids


def train_head_frozen(
    bench: Bench,
    states: FrozenStates,
    *,
    pool: str,
    seed: int,
    steps: int = 300,
    batch_size: int = 8,
    head_lr: float = 1e-3,
    train_ids: list[str] | None = None,
) -> dict:
    """The frozen tier: the package's `VisionHead` trained alone on frozen layer-m states with the
    training loss (`training.losses.embed_loss`), AdamW and the training schedule (cosine, 5 % warm-up);
    returns its held-out check (`training.input_dependence`) with ``cos``."""
    from mindedit_core.vision_head import VisionHead, VisionHeadConfig
    from training.config import TrainConfig
    from training.input_dependence import input_dependence
    from training.losses import embed_loss
    from training.schedule import make_scheduler
    from training.target_store import TargetStore

    store = TargetStore(bench.targets)
    train_ids = train_ids or bench.train_ids
    torch.manual_seed(seed)
    config = VisionHeadConfig(
        hidden_size=states.hidden_size,
        layer=states.layer,
        pool=pool,
        turn_start_id=states.turn_start_id if pool == "user_turn" else None,
    )
    head = VisionHead(config)
    y_train, y_test = store.stack(train_ids, "plain"), store.stack(bench.test_ids, "plain")
    head.set_target_norm(y_train)
    x_train = _padded(states, train_ids, pool)
    x_test = _padded(states, bench.test_ids, pool)
    optimizer = torch.optim.AdamW(head.parameters(), lr=head_lr, weight_decay=0.0)
    scheduler = make_scheduler(optimizer, TrainConfig(warmup_ratio=0.05, scheduler="cosine"), steps)
    generator = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(steps):
        pick = torch.randint(0, len(train_ids), (batch_size,), generator=generator)
        hidden, mask, ids = (t[pick] for t in x_train)
        loss, _ = embed_loss(head(hidden, mask, input_ids=ids), y_train[pick])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    head.eval()
    with torch.no_grad():
        pred = head(*x_test[:2], input_ids=x_test[2])
    return {"cos": mean_cos(pred, y_test), **input_dependence(pred, y_test, y_train.mean(dim=0))}


def ridge_probe(bench: Bench, features: dict[str, torch.Tensor], folds: int = 5) -> dict:
    """Closed-form ridge from standardised features (train statistics) to targets; the strength is the
    best of `RIDGE_STRENGTHS` by ``folds``-fold cross-validated cosine on the training records."""
    from training.target_store import TargetStore

    store = TargetStore(bench.targets)
    x_train = torch.stack([features[i] for i in bench.train_ids]).double()
    x_test = torch.stack([features[i] for i in bench.test_ids]).double()
    y_train = store.stack(bench.train_ids, "plain").double()
    y_test = store.stack(bench.test_ids, "plain").double()

    def fit(x, y, strength):
        mean, std = x.mean(dim=0), x.std(dim=0).clamp_min(1e-6)
        design = torch.cat([(x - mean) / std, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
        eye = torch.eye(design.shape[1], dtype=x.dtype)
        eye[-1, -1] = 0  # the intercept is not penalised
        weights = torch.linalg.solve(design.T @ design + strength * eye, design.T @ y)
        return lambda z: torch.cat([(z - mean) / std, torch.ones(len(z), 1, dtype=z.dtype)], dim=1) @ weights

    order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(0))
    chunks = order.chunk(folds)
    scores = {}
    for strength in RIDGE_STRENGTHS:
        fold_scores = []
        for k, held in enumerate(chunks):
            kept = torch.cat([c for j, c in enumerate(chunks) if j != k])
            predict = fit(x_train[kept], y_train[kept], strength)
            fold_scores.append(mean_cos(predict(x_train[held]), y_train[held]))
        scores[strength] = sum(fold_scores) / folds
    best = max(scores, key=scores.get)
    return {"cos": mean_cos(fit(x_train, y_train, best)(x_test), y_test), "strength": best}
