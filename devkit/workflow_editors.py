"""The native instruction editors' sections: refine -> Qwen-Image-Edit (2509/2511, core's
``TextEncodeQwenImageEditPlus``) and refine -> FLUX.1 Kontext dev (core's ``ReferenceLatent``), for
ComfyUI 0.33.

Both graphs share the pack's other sections (models column, source and mask, status and previews):
the refine node runs in the edit-instruction style on a remote VLM (an OpenAI-compatible server, the
default) or on the local MLLM loader placed beside it (connect its output instead); the editor
edits the whole image at its own resolution; the result is scaled back to the source's size and
pasted through the edit mask, so everything outside a painted mask stays the source's exactly.
"""

from __future__ import annotations

from devkit.workflow_parts import (
    BACK_TO_SOURCE_TITLE,
    GROUP_MODELS,
    NO_MINDEDIT_CHECKPOINT,
    REFINE_ONLY_LLM_FOLDER,
)
from devkit.workflow_sections import Layout, add_ksampler, resize_to
from mindedit_core import node_specs as specs

HF = "https://huggingface.co"
REMOTE_LOADER = specs.REMOTE_VLM.node_id
LOCAL_LOADER_TITLE = "Local VLM (connect instead)"
EDIT_STYLE = "edit_instruction"

GROUP_QWEN_EDIT = "Edit (Qwen-Image-Edit)"
GROUP_KONTEXT_EDIT = "Edit (FLUX.1 Kontext)"


def _file(repo: str, path: str, directory: str) -> dict[str, str]:
    return {
        "name": path.rsplit("/", 1)[-1],
        "url": f"{HF}/{repo}/resolve/main/{path}",
        "directory": directory,
    }


QWEN_EDIT_MODEL = _file(
    "Comfy-Org/Qwen-Image-Edit_ComfyUI",
    "split_files/diffusion_models/qwen_image_edit_2509_fp8_e4m3fn.safetensors",
    "diffusion_models",
)
QWEN_TEXT_ENCODER = _file(
    "Comfy-Org/Qwen-Image_ComfyUI",
    "split_files/text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors",
    "text_encoders",
)
QWEN_VAE = _file("Comfy-Org/Qwen-Image_ComfyUI", "split_files/vae/qwen_image_vae.safetensors", "vae")
KONTEXT_MODEL = _file(
    "Comfy-Org/flux1-kontext-dev_ComfyUI",
    "split_files/diffusion_models/flux1-dev-kontext_fp8_scaled.safetensors",
    "diffusion_models",
)
FLUX_CLIP_L = _file("comfyanonymous/flux_text_encoders", "clip_l.safetensors", "text_encoders")
FLUX_T5 = _file("comfyanonymous/flux_text_encoders", "t5xxl_fp8_e4m3fn_scaled.safetensors", "text_encoders")
FLUX_VAE = _file("Comfy-Org/Lumina_Image_2.0_Repackaged", "split_files/vae/ae.safetensors", "vae")


def add_vlm_loaders(lay: Layout) -> int:
    """The remote VLM loader (wired by default) and, unwired below it, the local MLLM loader."""
    remote = lay.add_pack(GROUP_MODELS, specs.REMOTE_VLM)  # its declared defaults: Ollama on this computer
    lay.add_pack(
        GROUP_MODELS,
        specs.MLLM_LOADER,
        values={"model_folder": REFINE_ONLY_LLM_FOLDER, "mindedit_checkpoint": NO_MINDEDIT_CHECKPOINT},
        title=LOCAL_LOADER_TITLE,
    )
    return remote


def add_qwen_models(lay: Layout) -> tuple[int, int, int]:
    unet = lay.add(
        GROUP_MODELS,
        "UNETLoader",
        widgets=[QWEN_EDIT_MODEL["name"], "default"],
        outputs=[("MODEL", "MODEL")],
        models=[QWEN_EDIT_MODEL],
    )
    clip = lay.add(
        GROUP_MODELS,
        "CLIPLoader",
        widgets=[QWEN_TEXT_ENCODER["name"], "qwen_image", "default"],
        outputs=[("CLIP", "CLIP")],
        models=[QWEN_TEXT_ENCODER],
    )
    vae = lay.add(
        GROUP_MODELS, "VAELoader", widgets=[QWEN_VAE["name"]], outputs=[("VAE", "VAE")], models=[QWEN_VAE]
    )
    return unet, clip, vae


def add_kontext_models(lay: Layout) -> tuple[int, int, int]:
    unet = lay.add(
        GROUP_MODELS,
        "UNETLoader",
        widgets=[KONTEXT_MODEL["name"], "default"],
        outputs=[("MODEL", "MODEL")],
        models=[KONTEXT_MODEL],
    )
    clip = lay.add(
        GROUP_MODELS,
        "DualCLIPLoader",
        widgets=[FLUX_CLIP_L["name"], FLUX_T5["name"], "flux", "default"],
        outputs=[("CLIP", "CLIP")],
        models=[FLUX_CLIP_L, FLUX_T5],
    )
    vae = lay.add(
        GROUP_MODELS, "VAELoader", widgets=[FLUX_VAE["name"]], outputs=[("VAE", "VAE")], models=[FLUX_VAE]
    )
    return unet, clip, vae


def _decode_to_source_size(lay: Layout, group: str, sampler: int, vae: int, source: int) -> int:
    """VAE Decode, then scale the editor's output back to the source's size (for the paste)."""
    g = lay.graph
    decode = lay.add(
        group, "VAEDecode", 1, inputs=[("samples", "LATENT"), ("vae", "VAE")], outputs=[("IMAGE", "IMAGE")]
    )
    g.connect(sampler, 0, decode, "samples")
    g.connect(vae, 0, decode, "vae")
    return resize_to(lay, "ImageScale", decode, source, "Source size", BACK_TO_SOURCE_TITLE, group=group)


def add_qwen_edit(lay: Layout, models: tuple[int, int, int], source: int, refine: int) -> int:
    """Scale to ~1 MP, encode the refined instruction and negative with the image, sample, decode."""
    g = lay.graph
    unet, clip, vae = models
    group = GROUP_QWEN_EDIT
    scaled = lay.add(
        group,
        "ImageScaleToTotalPixels",
        widgets=["lanczos", 1.0, 1],
        inputs=[("image", "IMAGE")],
        outputs=[("IMAGE", "IMAGE")],
    )
    g.connect(source, 0, scaled, "image")
    encoders = []
    for slot, which in ((0, "instruction"), (1, "negative")):
        enc = lay.add(
            group,
            "TextEncodeQwenImageEditPlus",
            widgets=[""],
            tall=(0,),
            # image2/image3 stay unlinked; the frontend shows their sockets, so they take rows too.
            inputs=[
                ("clip", "CLIP"),
                ("vae", "VAE"),
                ("image1", "IMAGE"),
                ("image2", "IMAGE"),
                ("image3", "IMAGE"),
            ],
            widget_inputs=[("prompt", "STRING")],
            outputs=[("CONDITIONING", "CONDITIONING")],
            title=f"Qwen encode (refined {which})",
        )
        g.connect(clip, 0, enc, "clip")
        g.connect(vae, 0, enc, "vae")
        g.connect(scaled, 0, enc, "image1")
        g.connect(refine, slot, enc, "prompt")
        encoders.append(enc)
    encode = lay.add(
        group, "VAEEncode", inputs=[("pixels", "IMAGE"), ("vae", "VAE")], outputs=[("LATENT", "LATENT")]
    )
    g.connect(scaled, 0, encode, "pixels")
    g.connect(vae, 0, encode, "vae")
    shift = lay.add(
        group,
        "ModelSamplingAuraFlow",
        1,
        widgets=[3.0],
        inputs=[("model", "MODEL")],
        outputs=[("MODEL", "MODEL")],
    )
    g.connect(unet, 0, shift, "model")
    norm = lay.add(
        group,
        "CFGNorm",
        1,
        widgets=[1.0, False],
        inputs=[("model", "MODEL")],
        outputs=[("patched_model", "MODEL")],
    )
    g.connect(shift, 0, norm, "model")
    sampler = add_ksampler(
        lay, group, [0, "randomize", 20, 2.5, "euler", "simple", 1.0], norm, encoders, encode
    )
    return _decode_to_source_size(lay, group, sampler, vae, source)


def add_kontext_edit(lay: Layout, models: tuple[int, int, int], source: int, refine: int) -> int:
    """Kontext's preferred size, the instruction through CLIP-L + T5 with the image as reference
    latent, guidance 2.5, cfg 1 (the refined negative is only previewed: Kontext dev ignores it)."""
    g = lay.graph
    unet, clip, vae = models
    group = GROUP_KONTEXT_EDIT
    scaled = lay.add(
        group, "FluxKontextImageScale", inputs=[("image", "IMAGE")], outputs=[("IMAGE", "IMAGE")]
    )
    g.connect(source, 0, scaled, "image")
    encode = lay.add(
        group, "VAEEncode", inputs=[("pixels", "IMAGE"), ("vae", "VAE")], outputs=[("LATENT", "LATENT")]
    )
    g.connect(scaled, 0, encode, "pixels")
    g.connect(vae, 0, encode, "vae")
    text = lay.add(
        group,
        "CLIPTextEncode",
        widgets=[""],
        tall=(0,),
        inputs=[("clip", "CLIP")],
        widget_inputs=[("text", "STRING")],
        outputs=[("CONDITIONING", "CONDITIONING")],
        title="CLIP Text Encode (refined instruction)",
    )
    g.connect(clip, 0, text, "clip")
    g.connect(refine, 0, text, "text")
    reference = lay.add(
        group,
        "ReferenceLatent",
        inputs=[("conditioning", "CONDITIONING"), ("latent", "LATENT")],
        outputs=[("CONDITIONING", "CONDITIONING")],
    )
    g.connect(text, 0, reference, "conditioning")
    g.connect(encode, 0, reference, "latent")
    guidance = lay.add(
        group,
        "FluxGuidance",
        1,
        widgets=[2.5],
        inputs=[("conditioning", "CONDITIONING")],
        outputs=[("CONDITIONING", "CONDITIONING")],
    )
    g.connect(reference, 0, guidance, "conditioning")
    zero = lay.add(
        group,
        "ConditioningZeroOut",
        1,
        inputs=[("conditioning", "CONDITIONING")],
        outputs=[("CONDITIONING", "CONDITIONING")],
    )
    g.connect(text, 0, zero, "conditioning")
    sampler = add_ksampler(
        lay, group, [0, "randomize", 20, 1.0, "euler", "simple", 1.0], unet, (guidance, zero), encode
    )
    return _decode_to_source_size(lay, group, sampler, vae, source)
