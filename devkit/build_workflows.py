"""Generate the shipped workflows (``workflows/*.json``, UI format) from readable Python.

    .venv/bin/python -m devkit.build_workflows          # rewrite workflows/*.json
    .venv/bin/python -m devkit.build_workflows --check  # exit 1 if the files are out of date

Eight graphs: masked and mask-free MIND-Edit (refined prompts + v_insight through the IP-Adapter)
and a refine-only edit that needs only public weights (a VLM and a checkpoint), each for SD1.5 and
for SDXL (the same graph with SDXL base and the ``_vit-h`` adapter: one head drives both); and refine ->
Qwen-Image-Edit and refine -> FLUX.1 Kontext for ComfyUI 0.33 (an edit instruction from a served or
local VLM, pasted back through the mask; devkit/workflow_editors.py). Each is laid
out in titled groups, left to right (models, source and mask, MIND-Edit, edit, output), every node
at the size the frontend gives it (`devkit.ui_graph.Column`). Model files are ordinary dropdown
widgets; the checkpoint and IP-Adapter loaders carry ``properties.models`` (name, URL, folder) and a
Note points to the download helper for folders. Widget values are positional and follow each
node's input order in ``/object_info`` (checked by the tests against a live server), so regenerate
rather than hand-edit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from devkit.workflow_editors import (
    EDIT_STYLE,
    GROUP_KONTEXT_EDIT,
    GROUP_QWEN_EDIT,
    add_kontext_edit,
    add_kontext_models,
    add_qwen_edit,
    add_qwen_models,
    add_vlm_loaders,
)
from devkit.workflow_parts import *  # noqa: F403  (the names the demo and tests use as wf.X)
from devkit.workflow_parts import (
    DEFAULT_LLM_FOLDER,
    DEFAULT_MINDEDIT_CHECKPOINT,
    EDIT_INSTRUCTION,
    EDIT_NOTE,
    EDIT_WORKFLOW,
    EDITOR_INSTRUCTION,
    EDITORS_MODELS_NOTE,
    GROUP_INPUT,
    GROUP_MINDEDIT,
    GROUP_MODELS,
    GROUP_OUTPUT,
    KONTEXT_NOTE,
    KONTEXT_WORKFLOW,
    MASKED_INSTRUCTION,
    MASKED_NOTE,
    MASKED_WORKFLOW,
    NO_MINDEDIT_CHECKPOINT,
    QWEN_EDIT_NOTE,
    QWEN_EDIT_WORKFLOW,
    REFINE_ONLY_INSTRUCTION,
    REFINE_ONLY_LLM_FOLDER,
    REFINE_ONLY_NOTE,
    REFINE_ONLY_WORKFLOW,
    SAMPLE_SOURCE,
    SD15,
    SDXL,
    SDXL_EDIT_WORKFLOW,
    SDXL_MASKED_WORKFLOW,
    SDXL_REFINE_ONLY_WORKFLOW,
    SOURCE_TITLE,
    Family,
)
from devkit.workflow_sections import (
    GROUP_COLUMNS,
    add_ipadapter,
    add_models,
    add_output,
    add_refine,
    add_sampling,
    add_source_and_mask,
    add_text_encoders,
    new_layout,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS_DIR = REPO_ROOT / "workflows"


# Workflow ids per (graph, family): stable, so a re-generated file is identical.
_IDS = {
    ("masked", "sd15"): "6f1b8f0e-6d1a-4a8e-9a51-6d9c2f0b7a11",
    ("edit", "sd15"): "0c5d3f4e-2a7b-4c1d-8e9f-3b2a1c0d9e8f",
    ("refine_only", "sd15"): "9d2e7c1a-4b5f-4e3a-8c6d-1f0a2b3c4d5e",
    ("masked", "sdxl"): "3a7e1c52-8b0d-4f6e-a1c9-5d2b7e4f8a30",
    ("edit", "sdxl"): "b4c8e2d1-7f3a-4a6b-9e5c-2d1f0a8b6c47",
    ("refine_only", "sdxl"): "e1f0d9c8-3b2a-4c7d-8e6f-9a5b4c3d2e1f",
}


def _prefix(family: Family, name: str) -> str:
    return f"mindedit/{name}" if family is SD15 else f"mindedit/sdxl_{name}"


def masked_edit_workflow(family: Family = SD15) -> dict:
    lay = new_layout(_IDS[("masked", family.key)], MASKED_NOTE, GROUP_COLUMNS, family)
    checkpoint, loader, ip_loader = add_models(
        lay, DEFAULT_LLM_FOLDER, DEFAULT_MINDEDIT_CHECKPOINT, with_ipadapter=True
    )
    source, region, soft = add_source_and_mask(lay, with_mask_file=True)
    refine = add_refine(lay, loader, source, region, MASKED_INSTRUCTION, embeds=True)
    model = add_ipadapter(lay, checkpoint, ip_loader, refine, soft)
    decode = add_sampling(
        lay, checkpoint, model, source, add_text_encoders(lay, checkpoint, refine), soft, 0.9
    )
    add_output(lay, source, decode, soft, refine, region, _prefix(family, "masked_edit"))
    return lay.finish()


def edit_workflow(family: Family = SD15) -> dict:
    lay = new_layout(_IDS[("edit", family.key)], EDIT_NOTE, {**GROUP_COLUMNS, GROUP_INPUT: 1}, family)
    checkpoint, loader, ip_loader = add_models(
        lay, DEFAULT_LLM_FOLDER, DEFAULT_MINDEDIT_CHECKPOINT, with_ipadapter=True
    )
    source = lay.add(
        GROUP_INPUT,
        "LoadImage",
        widgets=[SAMPLE_SOURCE, "image"],
        outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")],
        preview=True,
        title=SOURCE_TITLE,
    )
    refine = add_refine(lay, loader, source, None, EDIT_INSTRUCTION, embeds=True)
    model = add_ipadapter(lay, checkpoint, ip_loader, refine, None)
    decode = add_sampling(
        lay, checkpoint, model, source, add_text_encoders(lay, checkpoint, refine), None, 0.65
    )
    add_output(lay, source, decode, None, refine, None, _prefix(family, "edit"))
    return lay.finish()


def refine_only_workflow(family: Family = SD15) -> dict:
    lay = new_layout(
        _IDS[("refine_only", family.key)], REFINE_ONLY_NOTE, {**GROUP_COLUMNS, GROUP_INPUT: 1}, family
    )
    checkpoint, loader, _ = add_models(
        lay, REFINE_ONLY_LLM_FOLDER, NO_MINDEDIT_CHECKPOINT, with_ipadapter=False
    )
    source, region, soft = add_source_and_mask(lay, with_mask_file=False)
    refine = add_refine(lay, loader, source, region, REFINE_ONLY_INSTRUCTION, embeds=False, style="sd_tags")
    decode = add_sampling(
        lay, checkpoint, checkpoint, source, add_text_encoders(lay, checkpoint, refine), soft, 0.75
    )
    add_output(lay, source, decode, soft, refine, region, _prefix(family, "refine_only_edit"))
    return lay.finish()


def _editor_workflow(
    workflow_id: str, note: str, group: str, add_models_fn, add_edit_fn, prefix: str
) -> dict:
    columns = {GROUP_MODELS: 1, GROUP_INPUT: 2, GROUP_MINDEDIT: 1, group: 2, GROUP_OUTPUT: 2}
    lay = new_layout(workflow_id, note, columns, models_note=EDITORS_MODELS_NOTE)
    models = add_models_fn(lay)
    vlm = add_vlm_loaders(lay)
    source, region, soft = add_source_and_mask(lay, with_mask_file=False)
    refine = add_refine(lay, vlm, source, region, EDITOR_INSTRUCTION, embeds=False, style=EDIT_STYLE)
    edited = add_edit_fn(lay, models, source, refine)
    add_output(lay, source, edited, soft, refine, region, prefix)
    return lay.finish()


def qwen_image_edit_workflow() -> dict:
    return _editor_workflow(
        "3a7c1e52-8b4d-4f6a-9e2c-5d1b7a0f3c84",
        QWEN_EDIT_NOTE,
        GROUP_QWEN_EDIT,
        add_qwen_models,
        add_qwen_edit,
        "mindedit/qwen_image_edit",
    )


def flux_kontext_workflow() -> dict:
    return _editor_workflow(
        "b4e2d9a1-6c3f-4a7e-8d5b-2f9c0e1a7b63",
        KONTEXT_NOTE,
        GROUP_KONTEXT_EDIT,
        add_kontext_models,
        add_kontext_edit,
        "mindedit/flux_kontext",
    )


WORKFLOWS = {
    MASKED_WORKFLOW: masked_edit_workflow,
    EDIT_WORKFLOW: edit_workflow,
    REFINE_ONLY_WORKFLOW: refine_only_workflow,
    SDXL_MASKED_WORKFLOW: lambda: masked_edit_workflow(SDXL),
    SDXL_EDIT_WORKFLOW: lambda: edit_workflow(SDXL),
    SDXL_REFINE_ONLY_WORKFLOW: lambda: refine_only_workflow(SDXL),
    QWEN_EDIT_WORKFLOW: qwen_image_edit_workflow,
    KONTEXT_WORKFLOW: flux_kontext_workflow,
}


def render(workflow: dict) -> str:
    return json.dumps(workflow, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if workflows/*.json differ from the generator"
    )
    parser.add_argument("--out", type=Path, default=WORKFLOWS_DIR, help="target folder (default: workflows/)")
    args = parser.parse_args(argv)
    stale = []
    for name, build in WORKFLOWS.items():
        path = args.out / f"{name}.json"
        text = render(build())
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print(
            "out of date (run python -m devkit.build_workflows): " + ", ".join(map(str, stale)),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
