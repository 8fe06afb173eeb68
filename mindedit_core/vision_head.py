"""The vision head ``F_v``: hidden states of MLLM layer m -> ``v_insight`` in IP-Adapter input shape.

Design (attention pooling, one resampler block):

1. ``LayerNorm(h_m)``: layer m's output is the raw residual stream, whose scale grows with depth.
2. ``num_queries`` learnable queries cross-attend to the positions the head reads (item 5; image and
   instruction tokens), masked by the attention mask. Pooling over all of them matters: LLaVA-OneVision's chat
   template puts the image before the instruction, so under causal attention no single image token
   has seen the instruction (Qwen families get the instruction first, see
   `mindedit_core.mllm.families`), and the last token alone is a narrow bottleneck.
3. A feed-forward block refines the queries, then
   - ``plain``: the queries are flattened and an MLP maps them to ``[B, out_dim]`` (1024 for SD1.5's
     ``image_embeds``);
   - ``plus``: there is one query per output token (``out_tokens`` = 257 for ViT-H's penultimate
     states) and a per-token linear layer maps each to ``out_dim`` (1280): ``[B, 257, 1280]``.
4. **Scale.** Training uses ``1 - cos``, which leaves the output norm free, but the IP-Adapter
   projection is not scale-invariant. The head therefore outputs a unit direction times a stored
   ``target_norm`` buffer: a scalar for ``plain``; one value per token for ``plus`` (CLIP's CLS token
   and patch tokens have very different norms). `VisionHead.set_target_norm` measures it from CLIP
   targets; `VisionHead.direction` gives the unscaled unit output (for losses or inspection).

5. **Pooling** (``pool``, recorded in the head's config). ``prompt`` (heads trained before the learning
   benchmark, and the default a config without the field reads as): every prompt position. ``user_turn``
   (what training writes now): only the positions from the user turn's ``<|im_start|>`` to the end of the
   prompt, i.e. the image, the instruction and the assistant header. The system prompt is identical in
   every sample and makes up most of the prompt (~750 of ~790 positions for Qwen2.5-VL at 84 px); pooled
   over it, the head's output barely depends on the input and training collapses onto one vector (the
   mean target). `bench.bench_learning` measures both (docs/BENCHMARKS.md). The user turn is found from
   ``input_ids`` (`user_turn_mask`): callers pass them (``head(hidden, mask, input_ids=ids)``).

Widths all come from `VisionHeadConfig`, so other encoders/adapters work too. The inner width
``width`` defaults to ``min(hidden_size, 1024)``. Parameter counts (`VisionHead.num_parameters`):
LLaVA-OneVision-7B (hidden 3584): plain 23.1 M, plus 15.2 M; 0.5B (hidden 896): plain 13.8 M, plus
7.8 M. Most of it is the key/value projection of the 3584-wide states and, for plain, the flattened
8 x 1024 -> 1024 MLP.

Files: safetensors with the weights (``target_norm`` included) and the config as string metadata
(``mindedit.vision_head.config``: JSON with base model, layer m, kind, dims, prompt version, scale).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from .embeds import EmbedSpec, default_spec
from .safe_files import CHECKPOINT_FIX, check_safetensors_file, load_safetensors

HEAD_FORMAT = "mindedit.vision_head/1"
_CONFIG_KEY = "mindedit.vision_head.config"
POOLING = ("prompt", "user_turn")
TURN_START_TOKEN = "<|im_start|>"  # ChatML's; a family names its own (`MLLMFamily.turn_start`)


def turn_start_token_id(tokenizer, token: str = TURN_START_TOKEN) -> int:
    """The id of the turn-start ``token`` in ``tokenizer`` (a user-turn head's ``turn_start_id``)."""
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or (tokenizer.unk_token_id is not None and token_id == tokenizer.unk_token_id):
        raise ValueError(
            f"The tokenizer has no {token!r} token, so the user turn cannot be found: check the model's "
            "family (its turn_start token), or train with head_pool=prompt."
        )
    return int(token_id)


def user_turn_mask(
    input_ids: torch.Tensor, attention_mask: torch.Tensor | None, turn_start_id: int
) -> torch.Tensor:
    """``[B,T]`` mask of the last user turn: from the second-to-last ``turn_start_id`` (the user's
    ``<|im_start|>``; the last one opens the assistant's answer) to the end of ``attention_mask``.
    A row with fewer than two turn starts keeps its whole mask."""
    keep = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    starts = (input_ids == turn_start_id) & keep
    seen = starts.long().cumsum(dim=1)
    total = seen[:, -1:]
    in_turn = seen >= (total - 1)
    return keep & (in_turn | (total < 2))


def default_layer(num_layers: int, fraction: tuple[int, int] = (21, 28)) -> int:
    """The method reads layer 21 of LLaVA-OneVision-7B's 28: the same relative depth (3/4, rounded)
    for every family and size (24 layers -> 18, 28 -> 21, 36 -> 27), unless a family sets its own
    ``fraction`` (`MLLMFamily.layer_fraction`)."""
    numerator, denominator = fraction
    return max(1, round(num_layers * numerator / denominator))


@dataclass
class VisionHeadConfig:
    """Everything needed to rebuild a head and to check it fits a base model and an IP-Adapter.

    ``layer`` is 1-based: the output of decoder layer ``layer`` (= ``hidden_states[layer]`` of a
    transformers forward for ``layer < num_layers``; the hook reads the raw output, before the final norm).
    ``out_tokens`` is ``None`` for plain heads.
    """

    hidden_size: int
    layer: int
    kind: str = "plain"
    out_dim: int = 1024
    out_tokens: int | None = None
    width: int | None = None
    num_queries: int | None = None
    num_heads: int = 8
    mlp_ratio: float = 2.0
    base_model: str = ""
    prompt_version: str = ""
    pool: str = "prompt"
    turn_start_id: int | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("plain", "plus"):
            raise ValueError(f"VisionHeadConfig.kind must be 'plain' or 'plus', got {self.kind!r}.")
        if self.pool not in POOLING:
            raise ValueError(f"VisionHeadConfig.pool must be one of {POOLING}, got {self.pool!r}.")
        if self.pool == "user_turn" and self.turn_start_id is None:
            raise ValueError(
                "A 'user_turn' head needs turn_start_id (the tokenizer's id of the family's turn-start token)."
            )
        if self.kind == "plus" and not self.out_tokens:
            raise ValueError("A 'plus' vision head needs out_tokens (257 for SD1.5 IP-Adapter plus).")
        if self.kind == "plain":
            self.out_tokens = None
        if self.width is None:
            self.width = min(self.hidden_size, 1024)
        if self.num_queries is None:
            self.num_queries = 8 if self.kind == "plain" else int(self.out_tokens)
        if self.kind == "plus" and self.num_queries != self.out_tokens:
            raise ValueError(
                f"A 'plus' head has one query per output token: num_queries={self.num_queries} "
                f"!= out_tokens={self.out_tokens}."
            )
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} must be divisible by num_heads {self.num_heads}.")

    @classmethod
    def for_spec(cls, spec: EmbedSpec, *, hidden_size: int, layer: int, **kwargs) -> VisionHeadConfig:
        """A config whose output matches an embedding spec (e.g. `mindedit_core.embeds.SD15_PLUS`)."""
        return cls(
            hidden_size=hidden_size,
            layer=layer,
            kind=spec.kind,
            out_dim=spec.dim,
            out_tokens=spec.tokens,
            **kwargs,
        )

    @classmethod
    def for_kind(cls, kind: str, *, hidden_size: int, layer: int, **kwargs) -> VisionHeadConfig:
        """SD1.5 defaults: plain -> ``[B,1024]``, plus -> ``[B,257,1280]``."""
        return cls.for_spec(default_spec(kind), hidden_size=hidden_size, layer=layer, **kwargs)

    @property
    def spec(self) -> EmbedSpec:
        return EmbedSpec(kind=self.kind, dim=self.out_dim, tokens=self.out_tokens)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VisionHeadConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class VisionHead(nn.Module):
    """``F_v``: ``forward(hidden [B,T,H], attention_mask [B,T], input_ids=[B,T]) -> [B,out_dim] |
    [B,out_tokens,out_dim]`` (``input_ids`` are needed by ``user_turn`` heads)."""

    def __init__(self, config: VisionHeadConfig) -> None:
        super().__init__()
        self.config = config
        width, hidden = config.width, config.hidden_size
        self.input_norm = nn.LayerNorm(hidden)
        self.queries = nn.Parameter(torch.randn(config.num_queries, width) * width**-0.5)
        self.query_norm = nn.LayerNorm(width)
        self.cross_attention = nn.MultiheadAttention(
            width, config.num_heads, kdim=hidden, vdim=hidden, batch_first=True
        )
        mlp_width = int(width * config.mlp_ratio)
        self.ffn_norm = nn.LayerNorm(width)
        self.ffn = nn.Sequential(nn.Linear(width, mlp_width), nn.GELU(), nn.Linear(mlp_width, width))
        self.out_norm = nn.LayerNorm(width)
        if config.kind == "plain":
            self.output = nn.Sequential(
                nn.Linear(config.num_queries * width, width), nn.GELU(), nn.Linear(width, config.out_dim)
            )
            norm_shape: tuple[int, ...] = ()
        else:
            self.output = nn.Linear(width, config.out_dim)
            norm_shape = (config.out_tokens,)
        # Output scale (see module docstring); 1.0 until `set_target_norm` measures real targets.
        self.register_buffer("target_norm", torch.ones(norm_shape))

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def layer(self) -> int:
        return self.config.layer

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def pooling_mask(
        self, attention_mask: torch.Tensor | None, input_ids: torch.Tensor | None
    ) -> torch.Tensor | None:
        """The positions the head reads (see ``pool`` in the module docstring)."""
        if self.config.pool == "prompt":
            return attention_mask
        if input_ids is None:
            raise ValueError(
                "This vision head pools over the user turn (pool='user_turn') and needs the prompt's "
                "input_ids: call head(hidden, attention_mask, input_ids=...)."
            )
        return user_turn_mask(input_ids, attention_mask, int(self.config.turn_start_id))

    def direction(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The unit-norm output (per sample for plain, per token for plus), before scaling."""
        raw = self._raw(hidden, self.pooling_mask(attention_mask, input_ids))
        return raw / raw.norm(dim=-1, keepdim=True).clamp_min(1e-6)

    def forward(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``v_insight``: unit direction x ``target_norm``, in the head's dtype (float32 by default)."""
        return self.direction(hidden, attention_mask, input_ids) * self.target_norm.unsqueeze(-1)

    @torch.no_grad()
    def set_target_norm(self, targets: torch.Tensor) -> None:
        """Store the mean norm of CLIP targets (``[N,out_dim]`` or ``[N,out_tokens,out_dim]``)."""
        expected = self.config.spec.sample_shape
        if tuple(targets.shape[1:]) != expected:
            raise ValueError(
                f"targets have shape {list(targets.shape)}, expected [N,{','.join(map(str, expected))}] "
                f"for a {self.kind} head."
            )
        self.target_norm.copy_(targets.float().norm(dim=-1).mean(dim=0).to(self.target_norm))

    def _raw(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if hidden.ndim != 3 or hidden.shape[-1] != self.config.hidden_size:
            raise ValueError(
                f"The vision head expects hidden states [B,T,{self.config.hidden_size}] from layer "
                f"{self.config.layer}, got {list(hidden.shape)}: was it trained for another base model?"
            )
        hidden = hidden.to(self.queries.dtype)
        padding = None
        if attention_mask is not None:
            keep = attention_mask.to(hidden.device).bool()
            if keep.device.type != "meta" and not keep.any(dim=1).all():
                raise ValueError("The attention mask hides every position of a sample: nothing to pool.")
            padding = ~keep
        keys = self.input_norm(hidden)
        queries = self.queries.unsqueeze(0).expand(hidden.shape[0], -1, -1)
        attended, _ = self.cross_attention(
            self.query_norm(queries), keys, keys, key_padding_mask=padding, need_weights=False
        )
        tokens = queries + attended
        tokens = tokens + self.ffn(self.ffn_norm(tokens))
        tokens = self.out_norm(tokens)
        if self.kind == "plain":
            return self.output(tokens.flatten(1))
        return self.output(tokens)

    # -- files ---------------------------------------------------------------------------------
    def metadata(self) -> dict[str, str]:
        scale = self.target_norm.float()
        return {
            "format": HEAD_FORMAT,
            _CONFIG_KEY: json.dumps(self.config.to_dict(), sort_keys=True),
            "kind": self.kind,
            "layer": str(self.layer),
            "base_model": self.config.base_model,
            "prompt_version": self.config.prompt_version,
            "out_shape": json.dumps(list(self.config.spec.sample_shape)),
            "scale_mean": f"{scale.mean().item():.6g}",
            "pool": self.config.pool,
        }

    def save(self, path: str | Path) -> Path:
        """Write weights + config metadata to one safetensors file (written then renamed)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        tmp = path.with_name(path.name + ".tmp")
        save_file(state, str(tmp), metadata=self.metadata())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, *, device: str | torch.device | None = None) -> VisionHead:
        """Read a head written by `save`; errors name the file and what is wrong."""
        path = Path(path)
        head = cls(read_head_config(path))
        state = load_safetensors(path, what="vision head file", fix=CHECKPOINT_FIX)
        missing, unexpected = head.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"Vision head {path} does not match its own config: missing {sorted(missing)}, "
                f"unexpected {sorted(unexpected)}. The file is damaged or from another head version."
            )
        return head.to(device) if device is not None else head


def read_head_config(path: str | Path) -> VisionHeadConfig:
    """The config of a head file without loading its weights."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Vision head file not found: {path}.")
    check_safetensors_file(path, what="vision head file", fix=CHECKPOINT_FIX)
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    if _CONFIG_KEY not in meta:
        raise ValueError(
            f"{path} is not a MIND-Edit vision head: its safetensors metadata has no {_CONFIG_KEY!r} "
            "(write heads with VisionHead.save or mindedit_core.checkpoint.save_mindedit_checkpoint)."
        )
    return VisionHeadConfig.from_dict(json.loads(meta[_CONFIG_KEY]))
