"""The six rows of the paper's Table 2 and how a run is recognised as one of them.

A row is a pair of switches (refined prompts ``T_opt`` on/off, ``v_insight`` on/off) and, for each
output that is on, the training approach of the checkpoint it comes from: ``J`` (joint, variant
``joint``) or ``I`` (independent: ``text_only`` for the prompts, ``head_only`` for ``v_insight``).
A run folder records its method and the checkpoints (with their variants) its prompts and
``v_insight`` came from, so its row follows from ``run.json`` alone, on any dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLE_VARIANTS = {"joint": "joint", "text_only": "text_only", "head_only": "head_only"}
TRAINING_LETTER = {"joint": "J", "text_only": "I", "head_only": "I"}


@dataclass(frozen=True)
class Table2Row:
    exp: str  # the paper's name: "#1" ... "#6 (Ours)"
    slug: str  # its run folder name under the table2 command's --out
    prompt_from: str | None  # checkpoint role writing T_opt (None: raw instruction)
    insight_from: str | None  # checkpoint role giving v_insight (None: no v_insight)

    @property
    def t_opt(self) -> str | None:
        return TRAINING_LETTER[self.prompt_from] if self.prompt_from else None

    @property
    def v_insight(self) -> str | None:
        return TRAINING_LETTER[self.insight_from] if self.insight_from else None


TABLE2_ROWS: tuple[Table2Row, ...] = (
    Table2Row("#1", "exp1", "joint", None),
    Table2Row("#2", "exp2", None, "joint"),
    Table2Row("#3", "exp3", "text_only", "head_only"),
    Table2Row("#4", "exp4", "joint", "head_only"),
    Table2Row("#5", "exp5", "text_only", "joint"),
    Table2Row("#6 (Ours)", "exp6", "joint", "joint"),
)
ROW_ORDER = {row.exp: i for i, row in enumerate(TABLE2_ROWS)}
# Generation order of the table2 command: rows sharing a checkpoint run back to back (fewer loads).
RUN_ORDER = ("#1", "#2", "#6 (Ours)", "#4", "#3", "#5")


def _letter(source: dict | None) -> str | None:
    if not source:
        return None
    return TRAINING_LETTER.get(str(source.get("variant") or "").replace("-", "_"), "?")


def classify_run(method: dict, sources: dict | None) -> Table2Row | None:
    """The Table 2 row a run is, from its method and its sources' recorded variants (else None).

    Runs whose prompts come from the dataset, whose image embedding is not ``v_insight`` (baselines),
    or whose checkpoint variants are unknown are no Table 2 row."""
    sources = sources or {}
    refined = method.get("prompt") == "refined"
    insight = method.get("image_embed") == "insight"
    embeds_none = method.get("image_embed") == "none"
    t_opt = _letter(sources.get("prompt")) if refined else None
    v_ins = _letter(sources.get("insight")) if insight else None
    if (refined and t_opt in (None, "?")) or (insight and v_ins in (None, "?")):
        return None
    if not (insight or embeds_none):
        return None
    for row in TABLE2_ROWS:
        if (row.t_opt, row.v_insight) == (t_opt, v_ins):
            return row
    return None
