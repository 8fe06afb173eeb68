"""MIND-Edit core logic, independent of ComfyUI (importable and testable alone).

Kept light on purpose: importing ``mindedit_core`` imports nothing heavy. Submodules:
`prompting` (refinement prompt + parser), `images` (image prep for the MLLM), `embeds` (the
embedding contract), `vision_head` (F_v), `checkpoint` (MIND-Edit checkpoint folders), `mllm`
(LLaVA-OneVision loader and the one-pass refine + embed runner), `ipadapter` (IP-Adapter loading and
ComfyUI attention patching).
"""

__version__ = "0.1.0"
