"""ComfyUI's model nodes (checkpoint, LoRA and VAE loaders, text encoding, sampling, decoding),
weight-free: they check and carry names and numbers, and the decoder paints seeded noise.

Definitions follow ComfyUI 0.3.64's ``nodes.py`` (all V1 nodes). The loaders' combos list the
files the simulator is told are installed (``/sim/models``), so a graph naming a file that is not
installed fails validation with ``value_not_in_list``, as on a ComfyUI without that model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from PIL import Image

from comfyui_sim.nodes import (
    MAX_RESOLUTION,
    SEED_MAX,
    ModelList,
    NodeContext,
    NodeDef,
    NodeResult,
    image_add_noise,
)

# ComfyUI 0.3.64's KSampler.SAMPLERS and SCHEDULERS (comfy/samplers.py).
SAMPLERS = [
    "euler",
    "euler_cfg_pp",
    "euler_ancestral",
    "euler_ancestral_cfg_pp",
    "heun",
    "heunpp2",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpm_fast",
    "dpm_adaptive",
    "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp",
    "dpmpp_sde",
    "dpmpp_sde_gpu",
    "dpmpp_2m",
    "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu",
    "dpmpp_3m_sde",
    "dpmpp_3m_sde_gpu",
    "ddpm",
    "lcm",
    "ipndm",
    "ipndm_v",
    "deis",
    "res_multistep",
    "res_multistep_cfg_pp",
    "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp",
    "gradient_estimation",
    "er_sde",
    "seeds_2",
    "seeds_3",
    "ddim",
    "uni_pc",
    "uni_pc_bh2",
]
SCHEDULERS = [
    "simple",
    "sgm_uniform",
    "karras",
    "exponential",
    "ddim_uniform",
    "beta",
    "normal",
    "linear_quadratic",
    "kl_optimal",
]
LATENT_SCALE = 8  # SD latents are 1/8 of the image in each direction


@dataclass(frozen=True)
class Model:
    checkpoint: str
    loras: tuple[str, ...] = ()


@dataclass(frozen=True)
class Clip:
    checkpoint: str
    loras: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vae:
    name: str


@dataclass(frozen=True)
class Conditioning:
    text: str


@dataclass(frozen=True)
class Latent:
    width: int
    height: int
    batch_size: int
    seed: int | None = None
    text: str = ""


def _of(value: Any, kind: type[Any], name: str) -> Any:
    if not isinstance(value, kind):
        raise TypeError(f"Expected {name}, got {type(value).__name__}")
    return value


def checkpoint_loader(_: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    name = str(inputs["ckpt_name"])
    return NodeResult(outputs=(Model(name), Clip(name), Vae(name)))


def lora_loader(_: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    model: Model = _of(inputs["model"], Model, "MODEL")
    clip: Clip = _of(inputs["clip"], Clip, "CLIP")
    lora = str(inputs["lora_name"])
    return NodeResult(
        outputs=(
            Model(model.checkpoint, (*model.loras, lora)),
            Clip(clip.checkpoint, (*clip.loras, lora)),
        )
    )


def vae_loader(_: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    return NodeResult(outputs=(Vae(str(inputs["vae_name"])),))


def clip_text_encode(_: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    _of(inputs["clip"], Clip, "CLIP")
    return NodeResult(outputs=(Conditioning(str(inputs["text"])),))


def empty_latent_image(_: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    latent = Latent(
        width=int(inputs["width"]) // LATENT_SCALE,
        height=int(inputs["height"]) // LATENT_SCALE,
        batch_size=int(inputs["batch_size"]),
    )
    return NodeResult(outputs=(latent,))


def ksampler(_: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    _of(inputs["model"], Model, "MODEL")
    positive: Conditioning = _of(inputs["positive"], Conditioning, "CONDITIONING")
    _of(inputs["negative"], Conditioning, "CONDITIONING")
    latent: Latent = _of(inputs["latent_image"], Latent, "LATENT")
    sampled = Latent(
        latent.width, latent.height, latent.batch_size, int(inputs["seed"]), positive.text
    )
    return NodeResult(outputs=(sampled,))


def vae_decode(ctx: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    """Seeded noise over a colour taken from the prompt text: same seed and text, same pixels."""
    latent: Latent = _of(inputs["samples"], Latent, "LATENT")
    _of(inputs["vae"], Vae, "VAE")
    rgb = tuple(hashlib.sha256(latent.text.encode()).digest()[:3])
    size = (latent.width * LATENT_SCALE, latent.height * LATENT_SCALE)
    base = Image.new("RGB", size, rgb)
    noise_inputs = {"image": [base] * latent.batch_size, "seed": latent.seed or 0, "strength": 0.3}
    return image_add_noise(ctx, noise_inputs)


def _float(default: float, minimum: float, maximum: float, step: float, **extra: Any) -> Any:
    return ("FLOAT", {"default": default, "min": minimum, "max": maximum, "step": step, **extra})


def _size(tooltip: str) -> Any:
    spec = {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8, "tooltip": tooltip}
    return ("INT", spec)


def model_node_definitions() -> list[NodeDef]:
    strength = _float(1.0, -100.0, 100.0, 0.01)
    return [
        NodeDef(
            class_type="CheckpointLoaderSimple",
            display_name="Load Checkpoint",
            category="loaders",
            function=checkpoint_loader,
            required={
                "ckpt_name": (
                    ModelList("checkpoints"),
                    {"tooltip": "The name of the checkpoint (model) to load."},
                )
            },
            return_types=("MODEL", "CLIP", "VAE"),
            description="Loads a diffusion model checkpoint.",
        ),
        NodeDef(
            class_type="LoraLoader",
            display_name="Load LoRA",
            category="loaders",
            function=lora_loader,
            required={
                "model": ("MODEL",),
                "clip": ("CLIP",),
                "lora_name": (ModelList("loras"), {"tooltip": "The name of the LoRA."}),
                "strength_model": strength,
                "strength_clip": strength,
            },
            return_types=("MODEL", "CLIP"),
        ),
        NodeDef(
            class_type="VAELoader",
            display_name="Load VAE",
            category="loaders",
            function=vae_loader,
            required={"vae_name": (ModelList("vae"),)},
            return_types=("VAE",),
        ),
        NodeDef(
            class_type="CLIPTextEncode",
            display_name="CLIP Text Encode (Prompt)",
            category="conditioning",
            function=clip_text_encode,
            required={
                "text": ("STRING", {"multiline": True, "dynamicPrompts": True}),
                "clip": ("CLIP",),
            },
            return_types=("CONDITIONING",),
        ),
        NodeDef(
            class_type="EmptyLatentImage",
            display_name="Empty Latent Image",
            category="latent",
            function=empty_latent_image,
            required={
                "width": _size("The width of the latent images in pixels."),
                "height": _size("The height of the latent images in pixels."),
                "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
            },
            return_types=("LATENT",),
        ),
        NodeDef(
            class_type="KSampler",
            display_name="KSampler",
            category="sampling",
            function=ksampler,
            required={
                "model": ("MODEL",),
                "seed": (
                    "INT",
                    {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True},
                ),
                "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
                "cfg": _float(8.0, 0.0, 100.0, 0.1, round=0.01),
                "sampler_name": (list(SAMPLERS),),
                "scheduler": (list(SCHEDULERS),),
                "positive": ("CONDITIONING",),
                "negative": ("CONDITIONING",),
                "latent_image": ("LATENT",),
                "denoise": _float(1.0, 0.0, 1.0, 0.01),
            },
            return_types=("LATENT",),
            interruptible=True,
        ),
        NodeDef(
            class_type="VAEDecode",
            display_name="VAE Decode",
            category="latent",
            function=vae_decode,
            required={"samples": ("LATENT",), "vae": ("VAE",)},
            return_types=("IMAGE",),
        ),
    ]
