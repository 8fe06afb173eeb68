"""Our SDXL IP-Adapter apply beside ComfyUI_IPAdapter_plus's, on the same MODEL and the same EMBEDS.

Nothing of that pack is in this repository: pass a checkout of it (``--ipadapter-plus-path``; e.g.
``git clone https://github.com/cubiq/ComfyUI_IPAdapter_plus``). It is imported in-process inside
ComfyUI (``$COMFYUI_PATH``, else the vendored 0.3.75, on the CPU) as ComfyUI imports a custom node
pack. Both applies run on the tiny SDXL checkpoint (``devkit.fixtures.sdxl`` "sites70": SDXL's 70
cross-attention sites, 320 channels) with a tiny ``ip-adapter[-plus]_sdxl_vit-h`` file whose site
widths fit it, plain and plus, with the same positive and negative EMBEDS (weight 1, the whole
schedule; theirs through their ``IPAdapterEmbeds`` node, ``weight_type`` linear, ``embeds_scaling``
"V only", i.e. their plain sum of the text and the image attention). Reported:

- sites: the attn2 keys each apply installs, and the keys ComfyUI actually calls during sampling
  (each installed callable wrapped by a counter for one sampling run; the wrapper forwards the call);
- latents: ``comfy.sample.sample`` (euler, ``--steps``, the same seed, noise and text conditioning)
  unpatched, with ours, with theirs, and with ours restricted to the sites theirs reaches (our other
  keys removed from the patched clone's ``model_options``): max / mean absolute differences.

Run: ``.venv/bin/python bench/bench_ipadapter_plus_sdxl.py --ipadapter-plus-path /path/to/ComfyUI_IPAdapter_plus``
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import platform
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

THEIR_MODULE = "ComfyUI_IPAdapter_plus_under_test"


def import_comfy():
    from devkit.comfyui_runtime import comfyui_root

    tree = comfyui_root()
    sys.path.append(str(tree))  # at the end: our repo's packages win (ComfyUI has its own `nodes`)
    from comfy.cli_args import args

    args.cpu = True
    import folder_paths  # noqa: F401  (the pack reads it at import)

    return tree


def import_their_pack(path: Path):
    """Their package, loaded as ComfyUI loads a custom node folder. Nothing is stubbed: the modules it
    imports at load time (torch, torchvision, PIL, comfy, node_helpers, folder_paths) are all present;
    insightface is only imported inside their FaceID paths, which this bench does not use."""
    init = path / "__init__.py"
    if not (path / "IPAdapterPlus.py").is_file():
        raise SystemExit(f"{path} holds no IPAdapterPlus.py: pass a ComfyUI_IPAdapter_plus checkout")
    spec = importlib.util.spec_from_file_location(THEIR_MODULE, init, submodule_search_locations=[str(path)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[THEIR_MODULE] = module
    spec.loader.exec_module(module)
    return sys.modules[f"{THEIR_MODULE}.IPAdapterPlus"], sys.modules[f"{THEIR_MODULE}.utils"]


def comfy_attention(q, k, v, heads, extra_options=None):
    """ComfyUI's attention with the layer's options, as our node passes it (nodes/ipadapter_nodes.py)."""
    from comfy.ldm.modules import attention as comfy_attention_module

    extra = extra_options or {}
    return comfy_attention_module.optimized_attention(
        q, k, v, heads, attn_precision=extra.get("attn_precision"), transformer_options=extra
    )


def attn2_patches(model) -> dict:
    return dict(model.model_options["transformer_options"].get("patches_replace", {}).get("attn2", {}))


def with_attn2(model, patches: dict):
    """A clone of ``model`` whose attn2 replacements are ``patches`` (other options kept)."""
    clone = model.clone()
    options = copy.copy(clone.model_options["transformer_options"])
    replace = dict(options.get("patches_replace", {}))
    replace["attn2"] = patches
    options["patches_replace"] = replace
    clone.model_options["transformer_options"] = options
    return clone


class CallCounter:
    """Forwards to one installed attn2 replacement and counts the calls ComfyUI makes to its key."""

    def __init__(self, key, inner, calls: Counter):
        self.key, self.inner, self.calls = key, inner, calls

    def __call__(self, q, k, v, extra_options):
        self.calls[self.key] += 1
        return self.inner(q, k, v, extra_options)

    def to(self, *args, **kwargs):
        return self


def sites_reached(model, sample) -> Counter:
    calls: Counter = Counter()
    patches = {key: CallCounter(key, fn, calls) for key, fn in attn2_patches(model).items()}
    sample(with_attn2(model, patches))
    return calls


def describe(keys) -> str:
    """Keys grouped by (block kind, block index): e.g. ``input 4 x2``."""
    groups: Counter = Counter((k[0], k[1]) for k in keys)
    return ", ".join(f"{kind} {block} x{n}" for (kind, block), n in sorted(groups.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--ipadapter-plus-path", type=Path, required=True, help="a ComfyUI_IPAdapter_plus checkout"
    )
    parser.add_argument("--latent", type=int, default=16, help="latent side (16 = 128 px)")
    parser.add_argument("--steps", type=int, default=4, help="euler steps")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tree = import_comfy()
    theirs_module, their_utils = import_their_pack(args.ipadapter_plus_path.resolve())

    import comfy.sample
    import comfy.sd

    from devkit.fixtures import cache_root
    from devkit.fixtures.ipadapter_files import sdxl_ipadapter_file
    from devkit.fixtures.sdxl import tiny_sdxl_checkpoint
    from mindedit_core.ipadapter import SDXL_SITES, apply_ipadapter, load_ipadapter

    started = time.perf_counter()
    ckpt = tiny_sdxl_checkpoint(cache_root(), "sites70", seed=0)
    model = comfy.sd.load_checkpoint_guess_config(str(ckpt), output_vae=False, output_clip=False)[0]
    gen = torch.Generator().manual_seed(1)
    text = {"pos": torch.randn(1, 77, 2048, generator=gen), "neg": torch.randn(1, 77, 2048, generator=gen)}
    pooled = {"pos": torch.randn(1, 1280, generator=gen), "neg": torch.randn(1, 1280, generator=gen)}
    positive = [[text["pos"], {"pooled_output": pooled["pos"]}]]
    negative = [[text["neg"], {"pooled_output": pooled["neg"]}]]
    latent_image = torch.zeros(1, 4, args.latent, args.latent)
    noise = torch.randn(1, 4, args.latent, args.latent, generator=gen)

    def sample(m) -> torch.Tensor:
        with torch.no_grad():
            return comfy.sample.sample(
                m,
                noise,
                args.steps,
                5.0,
                "euler",
                "normal",
                positive,
                negative,
                latent_image,
                disable_pbar=True,
                seed=0,
            ).float()

    lines = []
    unpatched = sample(model)
    real_keys = {site.comfy_key for site in SDXL_SITES}
    for kind in ("plain", "plus"):
        path = sdxl_ipadapter_file(cache_root(), kind)
        shape = (1, 1024) if kind == "plain" else (1, 257, 1280)
        g = torch.Generator().manual_seed(7)
        pos, neg = torch.randn(shape, generator=g), torch.randn(shape, generator=g)

        ours = apply_ipadapter(
            model, load_ipadapter(path), pos, neg, weight=1.0, attention_fn=comfy_attention
        )
        their_node = theirs_module.IPAdapterEmbeds()
        # Their node returns ipadapter_execute's (model, image) though it declares one output (MODEL):
        # ComfyUI takes the first.
        theirs = their_node.apply_ipadapter(
            model,
            their_utils.ipadapter_model_loader(str(path)),
            pos,
            1.0,
            "linear",
            0.0,
            1.0,
            neg_embed=neg,
            embeds_scaling="V only",
        )[0]
        assert not attn2_patches(model), "an apply changed the MODEL it was given"
        reached = {name: sites_reached(m, sample) for name, m in (("ours", ours), ("theirs", theirs))}
        installed = {name: set(attn2_patches(m)) for name, m in (("ours", ours), ("theirs", theirs))}
        ours_on_theirs = with_attn2(
            ours, {k: v for k, v in attn2_patches(ours).items() if k in reached["theirs"]}
        )
        latents = {
            "ours": sample(ours),
            "theirs": sample(theirs),
            "ours on their sites": sample(ours_on_theirs),
        }

        def diff(a: torch.Tensor, b: torch.Tensor) -> str:
            d = (a - b).abs()
            return f"{d.max().item():.3g} / {d.mean().item():.3g}"

        first = len(lines)
        lines.append(f"### {kind} ({path.name})")
        lines.append("")
        lines.append(
            "| apply | attn2 keys installed | keys ComfyUI called (of SDXL's 70) | installed, never called |"
        )
        lines.append("| --- | --- | --- | --- |")
        for name in ("ours", "theirs"):
            missed = sorted(installed[name] - set(reached[name]))
            lines.append(
                f"| {name} | {len(installed[name])} | {len(set(reached[name]) & real_keys)} "
                f"({describe(reached[name])}) | {len(missed)}{': ' + describe(missed) if missed else ''} |"
            )
        lines.append("")
        lines.append("| latents after sampling, same seed | max abs / mean abs difference |")
        lines.append("| --- | --- |")
        lines.append(f"| ours vs unpatched (the adapter's effect) | {diff(latents['ours'], unpatched)} |")
        lines.append(f"| theirs vs unpatched | {diff(latents['theirs'], unpatched)} |")
        lines.append(f"| theirs vs ours | {diff(latents['theirs'], latents['ours'])} |")
        lines.append(
            f"| theirs vs ours restricted to the {len(reached['theirs'])} sites theirs reaches | "
            f"{diff(latents['theirs'], latents['ours on their sites'])} |"
        )
        lines.append("")
        print("\n".join(lines[first:]), flush=True)

    load = os.getloadavg()
    header = [
        f"bench/bench_ipadapter_plus_sdxl.py, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()} {platform.system()}, torch {torch.__version__} ({args.threads} threads), "
        f"ComfyUI tree {tree}, ComfyUI_IPAdapter_plus at {args.ipadapter_plus_path}, tiny SDXL sites70, "
        f"latent {args.latent}x{args.latent}, euler {args.steps} steps, cfg 5, float32 on the CPU; "
        f"load average {load[0]:.1f}; {time.perf_counter() - started:.0f} s in all",
        "",
    ]
    print("\n" + "\n".join(header + lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
