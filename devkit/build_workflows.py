"""Generate the shipped workflows (``workflows/*.json``, UI format) from readable Python.

    .venv/bin/python -m devkit.build_workflows          # rewrite workflows/*.json
    .venv/bin/python -m devkit.build_workflows --check  # exit 1 if the files are out of date

Three graphs: masked and mask-free MIND-Edit (refined prompts + v_insight through the IP-Adapter),
and a refine-only edit that needs only public weights (a VLM and an SD1.5 checkpoint). Each is laid
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

from devkit.workflow_parts import *  # noqa: F403  (the names the demo and tests use as wf.X)
from devkit.workflow_parts import (
    DEFAULT_LLM_FOLDER,
    DEFAULT_MINDEDIT_CHECKPOINT,
    EDIT_INSTRUCTION,
    EDIT_NOTE,
    EDIT_WORKFLOW,
    GROUP_INPUT,
    MASKED_INSTRUCTION,
    MASKED_NOTE,
    MASKED_WORKFLOW,
    NO_MINDEDIT_CHECKPOINT,
    REFINE_ONLY_INSTRUCTION,
    REFINE_ONLY_LLM_FOLDER,
    REFINE_ONLY_NOTE,
    REFINE_ONLY_WORKFLOW,
    SAMPLE_SOURCE,
    SOURCE_TITLE,
    status_example,
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


def masked_edit_workflow() -> dict:
    lay = new_layout("6f1b8f0e-6d1a-4a8e-9a51-6d9c2f0b7a11", MASKED_NOTE, GROUP_COLUMNS)
    checkpoint, loader, ip_loader = add_models(
        lay, DEFAULT_LLM_FOLDER, DEFAULT_MINDEDIT_CHECKPOINT, with_ipadapter=True
    )
    source, region, soft = add_source_and_mask(lay, with_mask_file=True)
    refine = add_refine(lay, loader, source, region, MASKED_INSTRUCTION, embeds=True)
    model = add_ipadapter(lay, checkpoint, ip_loader, refine, soft)
    decode = add_sampling(
        lay, checkpoint, model, source, add_text_encoders(lay, checkpoint, refine), soft, 0.9
    )
    status = status_example(DEFAULT_LLM_FOLDER, DEFAULT_MINDEDIT_CHECKPOINT, MASKED_INSTRUCTION, True)
    add_output(lay, source, decode, soft, refine, region, "mindedit/masked_edit", status)
    return lay.finish()


def edit_workflow() -> dict:
    lay = new_layout("0c5d3f4e-2a7b-4c1d-8e9f-3b2a1c0d9e8f", EDIT_NOTE, {**GROUP_COLUMNS, GROUP_INPUT: 1})
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
    status = status_example(DEFAULT_LLM_FOLDER, DEFAULT_MINDEDIT_CHECKPOINT, EDIT_INSTRUCTION, False)
    add_output(lay, source, decode, None, refine, None, "mindedit/edit", status)
    return lay.finish()


def refine_only_workflow() -> dict:
    lay = new_layout(
        "9d2e7c1a-4b5f-4e3a-8c6d-1f0a2b3c4d5e", REFINE_ONLY_NOTE, {**GROUP_COLUMNS, GROUP_INPUT: 1}
    )
    checkpoint, loader, _ = add_models(
        lay, REFINE_ONLY_LLM_FOLDER, NO_MINDEDIT_CHECKPOINT, with_ipadapter=False
    )
    source, region, soft = add_source_and_mask(lay, with_mask_file=False)
    refine = add_refine(lay, loader, source, region, REFINE_ONLY_INSTRUCTION, embeds=False)
    decode = add_sampling(
        lay, checkpoint, checkpoint, source, add_text_encoders(lay, checkpoint, refine), soft, 0.75
    )
    status = status_example(REFINE_ONLY_LLM_FOLDER, NO_MINDEDIT_CHECKPOINT, REFINE_ONLY_INSTRUCTION, True)
    add_output(lay, source, decode, soft, refine, region, "mindedit/refine_only_edit", status)
    return lay.finish()


WORKFLOWS = {
    MASKED_WORKFLOW: masked_edit_workflow,
    EDIT_WORKFLOW: edit_workflow,
    REFINE_ONLY_WORKFLOW: refine_only_workflow,
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
