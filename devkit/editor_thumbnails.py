"""Template-browser thumbnails of the editor workflows (`devkit.workflow_editors`).

The editors' weights cannot run here, so these thumbnails show no edit result: the bundled sample
as the VLM reads it (the mask outlined) beside a card naming the chain. Regenerate with
``python -m devkit.editor_thumbnails``.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from devkit.build_workflows import WORKFLOWS_DIR
from devkit.demo import SAMPLE_MASK, SAMPLE_SOURCE
from devkit.workflow_parts import KONTEXT_WORKFLOW, QWEN_EDIT_WORKFLOW

CARDS = {
    QWEN_EDIT_WORKFLOW: ("MIND-Edit", "edit instruction", "-> Qwen-Image-Edit", "masked paste-back"),
    KONTEXT_WORKFLOW: ("MIND-Edit", "edit instruction", "-> FLUX.1 Kontext", "masked paste-back"),
}


def editor_thumbnail(name: str, height: int = 256) -> Path:
    from mindedit_core.images import prepare_mllm_image

    seen = prepare_mllm_image(Image.open(SAMPLE_SOURCE), mask=Image.open(SAMPLE_MASK), max_side=height)
    seen = seen.resize((round(seen.width * height / seen.height), height))
    card = Image.new("RGB", (round(height * 1.1), height), (40, 36, 60))
    draw = ImageDraw.Draw(card)
    for row, line in enumerate(CARDS[name]):
        draw.text((14, 40 + row * 44), line, fill=(235, 230, 250))
    canvas = Image.new("RGB", (seen.width + card.width + 8, height), (32, 32, 32))
    canvas.paste(seen, (0, 0))
    canvas.paste(card, (seen.width + 8, 0))
    target = WORKFLOWS_DIR / f"{name}.jpg"
    canvas.save(target, quality=88)
    return target


if __name__ == "__main__":
    for workflow in CARDS:
        print(f"wrote {editor_thumbnail(workflow)}")
