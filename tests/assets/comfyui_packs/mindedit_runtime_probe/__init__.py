"""Test-only ComfyUI pack (never shipped), loaded beside ours by the session server.

- `MindEditProbeFail` fails on demand, so tests can check how an execution error is reported;
- `MindEditProbeDetect` runs ComfyUI's own model detection on a checkpoint inside the server
  (where `comfy` is already imported) and reports the detected model class and UNet config.
"""

import json


class MindEditProbeFail:
    """Raises `RuntimeError(message)` when executed (if `fail` is true); else passes the text on."""

    CATEGORY = "testing/mindedit"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "message": ("STRING", {"default": "probe failure"}),
                "fail": ("BOOLEAN", {"default": True}),
            }
        }

    def run(self, message, fail):
        if fail:
            raise RuntimeError(message)
        return {"ui": {"text": [message]}, "result": (message,)}


class MindEditProbeDetect:
    """Reports `comfy.model_detection`'s verdict on a checkpoint from models/checkpoints/."""

    CATEGORY = "testing/mindedit"
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        import folder_paths

        return {"required": {"ckpt_name": (folder_paths.get_filename_list("checkpoints"),)}}

    def run(self, ckpt_name):
        import comfy.model_detection
        import comfy.utils
        import folder_paths

        state_dict = comfy.utils.load_torch_file(
            folder_paths.get_full_path_or_raise("checkpoints", ckpt_name)
        )
        config = comfy.model_detection.model_config_from_unet(state_dict, "model.diffusion_model.")
        report = {
            "class": type(config).__name__ if config is not None else None,
            "unet": config.unet_config if config is not None else None,
        }
        return {"ui": {"text": [json.dumps(report, default=str)]}}


# Built with dict(...), not a literal: ComfyUI-Manager's scanner must not list test-only nodes as the
# pack's (tests/test_distribution.py).
NODE_CLASS_MAPPINGS = dict(MindEditProbeFail=MindEditProbeFail, MindEditProbeDetect=MindEditProbeDetect)
