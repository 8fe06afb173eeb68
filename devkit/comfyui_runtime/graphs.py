"""The tiny API graphs the tests and benchmarks queue: a plain txt2img job, one run of the pack's MLLM."""

from __future__ import annotations


def txt2img_graph(
    ckpt_name: str,
    seed: int,
    *,
    positive: str = "a red ball on a table",
    negative: str = "blurry",
    prefix: str = "runtime",
) -> dict:
    """CheckpointLoaderSimple -> CLIPTextEncode x2 -> EmptyLatentImage -> KSampler -> VAEDecode -> SaveImage.

    64x64, 2 euler steps: the smallest complete txt2img API prompt (node ids "1" to "7", "7" saves).
    """
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": positive, "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": negative, "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0],
                "positive": ["2", 0],
                "negative": ["3", 0],
                "latent_image": ["4", 0],
                "seed": seed,
                "steps": 2,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
            },
        },
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": prefix}},
    }


def mllm_refine_graph(
    image: str,
    model_folder: str,
    instruction: str,
    *,
    checkpoint: str = "none",
    max_new_tokens: int = 16,
) -> dict:
    """LoadImage -> MindEditMLLMLoader -> MindEditRefineInstruction -> PreviewAny (its status line).

    The smallest API prompt that runs the pack's MLLM (node ids "1" to "4"; "4" reports the text).
    """
    from mindedit_core.node_specs import MLLM_LOADER, REFINE_INSTRUCTION

    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": _pack_node(MLLM_LOADER, model_folder=model_folder, mindedit_checkpoint=checkpoint),
        "3": _pack_node(
            REFINE_INSTRUCTION,
            mllm=["2", 0],
            image=["1", 0],
            instruction=instruction,
            max_new_tokens=max_new_tokens,
        ),
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 3]}},
    }


def _pack_node(spec, **inputs) -> dict:
    """An API node of the pack: its declared widget defaults, overridden and linked by ``inputs``."""
    defaults = {item.name: item.default for item in spec.widgets}
    return {"class_type": spec.node_id, "inputs": {**defaults, **inputs}}
