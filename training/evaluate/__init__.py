"""Evaluation harness: batch editing with diffusers (`generate`), the method's metrics (`score`:
CLIP-I, LPIPS, PSNR, SSIM) and a Markdown report with plots (`report`).

    python -m training.evaluate generate --data DIR --format humanedit --split-manifest ... --out runs/mind_edit ...
    python -m training.evaluate score --run runs/mind_edit --clip-model DIR --lpips-backbone FILE
    python -m training.evaluate report --runs runs/mind_edit runs/sd15 --out reports/humanedit

See docs/EVALUATION.md for every option and convention.
"""

from .conditioning import PRESETS, Conditioner, Conditioning, MethodSpec, SourceClipEncoder
from .generate import GenerateStats, Shard, item_seed, make_run_info, run_generate
from .pipelines import DiffusionSettings, EditPipelines
from .report import build_report
from .score import ScoreSettings, score_run
from .selection import DatasetSelection, load_selection
