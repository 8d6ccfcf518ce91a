"""The nodes the simulator knows: their ComfyUI definitions and weight-free implementations.

Input names, types, defaults and limits follow ComfyUI 0.3.64 (``nodes.py``,
``comfy_extras/nodes_images.py``, ``nodes_post_processing.py``, ``nodes_audio.py``,
``nodes_video.py``), so a workflow that runs here runs on a real ComfyUI too.
"""

from __future__ import annotations

import json
import mimetypes
import os
import random
import secrets
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageFilter, ImageOps, ImageSequence

from comfyui_sim.media import (
    Audio,
    Mesh,
    Video,
    get_save_image_path,
    save_animated_webp,
    save_flac,
    save_gif,
    save_glb,
    save_mp4,
    save_png,
)

MAX_RESOLUTION = 16384
SEED_MAX = 0xFFFFFFFFFFFFFFFF
PREFIX_TOOLTIP = (
    "The prefix for the file to save. This may include formatting information such as "
    "%date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes."
)
HIDDEN_PROMPT = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
WEBP_METHODS = {"default": 4, "fastest": 0, "slowest": 6}
VIDEO_CONTAINERS = ["auto", "mp4"]
VIDEO_CODECS = ["auto", "h264"]
VHS_FORMATS = ["image/gif", "image/webp", "video/h264-mp4"]

# An input spec as ComfyUI's INPUT_TYPES gives it: ("INT", {...}), (["a", "b"],) or ("IMAGE",).
InputSpec = tuple[Any, ...]
# Model files by folder ("checkpoints", "loras", "vae"), as ComfyUI's folder_paths lists them.
Models = Mapping[str, Sequence[str]]
NO_MODELS: Models = {}


@dataclass(frozen=True)
class ModelList:
    """In place of a combo's options: the files installed in a model folder, read at request
    time (ComfyUI lists ``models/<folder>`` afresh for every /object_info and validation)."""

    folder: str

    def options(self, models: Models) -> list[str]:
        return sorted(models.get(self.folder, ()))


@dataclass(frozen=True)
class NodeContext:
    """What a node sees besides its inputs (ComfyUI's hidden inputs and folders)."""

    node_id: str
    output_dir: Path
    temp_dir: Path
    input_dir: Path
    prompt: Mapping[str, Any]
    extra_pnginfo: Mapping[str, Any] | None


@dataclass(frozen=True)
class NodeResult:
    """Outputs (by index, as RETURN_TYPES) and the ``ui`` dict that becomes the history output."""

    outputs: tuple[Any, ...] = ()
    ui: dict[str, list[Any]] | None = None


NodeFunction = Callable[[NodeContext, dict[str, Any]], NodeResult]


@dataclass(frozen=True)
class NodeDef:
    class_type: str
    display_name: str
    category: str
    function: NodeFunction
    required: dict[str, InputSpec]
    optional: dict[str, InputSpec] = field(default_factory=dict)
    hidden: dict[str, str] = field(default_factory=dict)
    return_types: tuple[str, ...] = ()
    return_names: tuple[str, ...] | None = None
    output_node: bool = False
    description: str = ""
    python_module: str = "nodes"
    # Converted to ComfyUI's V3 node schema (comfy_api io.ComfyNode): /object_info shows its
    # combos as ["COMBO", {"options": [...]}] instead of V1's [[...], {...}].
    v3: bool = False
    # Whether an interrupt stops it while it runs. ComfyUI checks its interrupt flag before
    # each node and in the progress-bar hook, so only nodes that report progress as they go
    # (samplers) stop midway; every other node, once started, runs to its end.
    interruptible: bool = False

    def _public(self, spec: InputSpec, models: Models) -> InputSpec:
        """The spec as /object_info shows it: model lists filled in, V3 combos as COMBO."""
        kind, rest = spec[0], spec[1:]
        if isinstance(kind, ModelList):
            kind = kind.options(models)
        if isinstance(kind, list) and self.v3:
            extra = rest[0] if rest and isinstance(rest[0], dict) else {}
            return ("COMBO", {**extra, "options": list(kind)})
        return (kind, *rest)

    def input_types(self, models: Models = NO_MODELS) -> dict[str, dict[str, Any]]:
        types: dict[str, dict[str, Any]] = {
            "required": {k: self._public(v, models) for k, v in self.required.items()}
        }
        if self.optional:
            types["optional"] = {k: self._public(v, models) for k, v in self.optional.items()}
        if self.hidden:
            types["hidden"] = dict(self.hidden)
        return types

    def input_info(
        self, name: str, models: Models = NO_MODELS
    ) -> tuple[Any, str, dict[str, Any]] | None:
        """(type, category, options) of an input, like ComfyUI's ``get_input_info``; a combo's
        type is its list of options (also for V3 nodes, whose COMBO validation is the same)."""
        for category, inputs in (("required", self.required), ("optional", self.optional)):
            if name in inputs:
                spec = inputs[name]
                kind = spec[0].options(models) if isinstance(spec[0], ModelList) else spec[0]
                options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                return kind, category, options
        return None

    def public_input_config(self, name: str, models: Models = NO_MODELS) -> list[Any]:
        """``input_config`` as ComfyUI's validation errors show it (the /object_info form)."""
        spec = self.required.get(name) or self.optional.get(name) or ("*",)
        public = self._public(spec, models)
        extra = public[1] if len(public) > 1 and isinstance(public[1], dict) else {}
        return [public[0], extra]

    def object_info(self, models: Models = NO_MODELS) -> dict[str, Any]:
        types = self.input_types(models)
        return {
            "input": types,
            "input_order": {key: list(value) for key, value in types.items()},
            "output": list(self.return_types),
            "output_is_list": [False] * len(self.return_types),
            "output_name": list(self.return_names or self.return_types),
            "name": self.class_type,
            "display_name": self.display_name,
            "description": self.description,
            "python_module": self.python_module,
            "category": self.category,
            "output_node": self.output_node,
        }


# --- image nodes -------------------------------------------------------------------------------


def _images(value: Any) -> list[Image.Image]:
    if not isinstance(value, list) or not value or not isinstance(value[0], Image.Image):
        raise TypeError(f"Expected an IMAGE batch, got {type(value).__name__}")
    return value


def empty_image(_: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    color = int(inputs["color"])
    rgb = ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)
    image = Image.new("RGB", (int(inputs["width"]), int(inputs["height"])), rgb)
    # Nodes never modify an image in place, so a batch may share one image.
    return NodeResult(outputs=([image] * int(inputs["batch_size"]),))


def input_images(input_dir: Path) -> list[str]:
    """What LoadImage offers: the files in ``input/`` whose extension names an image type, as
    ComfyUI's ``folder_paths.filter_files_content_types(files, ["image"])`` keeps them."""
    try:
        names = os.listdir(input_dir)
    except OSError:
        return []
    images = []
    for name in names:
        kind = mimetypes.guess_type(name)[0] or ""
        if kind.startswith("image/") and (input_dir / name).is_file():
            images.append(name)
    return sorted(images)


def load_image(ctx: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    """Every frame of the file in ``input/``, EXIF-rotated, as RGB; the mask is 1 where the
    image is transparent (ComfyUI's ``1 - alpha``), as an "L" image."""
    # The combo check let through only names listed in input/, so this is a file there.
    path = ctx.input_dir / os.path.basename(str(inputs["image"]))
    images: list[Image.Image] = []
    masks: list[Image.Image] = []
    with Image.open(path) as source:
        for frame in ImageSequence.Iterator(source):
            upright = ImageOps.exif_transpose(frame)
            rgb = upright.convert("RGB")
            if images and rgb.size != images[0].size:
                continue  # ComfyUI keeps only the frames the size of the first
            images.append(rgb)
            if "A" in upright.getbands():
                masks.append(ImageOps.invert(upright.getchannel("A")))
            else:
                masks.append(Image.new("L", rgb.size, 0))
    return NodeResult(outputs=(images, masks))


UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
CROP_METHODS = ["disabled", "center"]
_RESAMPLING = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def image_scale(_: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    """ComfyUI's ImageScale: 0 for one side keeps the aspect ratio, 0 for both keeps the image;
    ``center`` crops to the target's aspect ratio before scaling."""
    images = _images(inputs["image"])
    width, height = int(inputs["width"]), int(inputs["height"])
    if width == 0 and height == 0:
        return NodeResult(outputs=(images,))
    source_width, source_height = images[0].size
    if width == 0:
        width = max(1, round(source_width * height / source_height))
    elif height == 0:
        height = max(1, round(source_height * width / source_width))
    resample = _RESAMPLING[str(inputs["upscale_method"])]
    scaled = []
    for image in images:
        if inputs["crop"] == "center":
            image = ImageOps.fit(image, (width, height), method=resample)
        else:
            image = image.resize((width, height), resample)
        scaled.append(image)
    return NodeResult(outputs=(scaled,))


def image_invert(_: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    return NodeResult(outputs=([ImageOps.invert(i) for i in _images(inputs["image"])],))


def image_blur(_: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    radius = int(inputs["blur_radius"])
    sigma = float(inputs["sigma"])
    blur = ImageFilter.GaussianBlur(radius=min(sigma, float(radius)))
    return NodeResult(outputs=([i.filter(blur) for i in _images(inputs["image"])],))


_NORMAL = statistics.NormalDist()
_GAUSS = [_NORMAL.inv_cdf((u + 0.5) / 256) for u in range(256)]


def _noise_tables(strength: float) -> tuple[list[int], list[int]]:
    """Lookup tables from a uniform byte to the positive and negative parts of N(0, strength)."""
    positive: list[int] = []
    negative: list[int] = []
    for z in _GAUSS:
        delta = round(z * strength * 255)
        positive.append(min(255, max(0, delta)))
        negative.append(min(255, max(0, -delta)))
    return positive * 3, negative * 3


def image_add_noise(_: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    """image + strength * N(0, 1), clipped; the noise depends only on the seed."""
    seed = int(inputs["seed"])
    positive, negative = _noise_tables(float(inputs["strength"]))
    rng = _seeded_generator(seed)
    out: list[Image.Image] = []
    for image in _images(inputs["image"]):
        width, height = image.size
        uniform = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
        raised = ImageChops.add(image.convert("RGB"), uniform.point(positive))
        out.append(ImageChops.subtract(raised, uniform.point(negative)))
    return NodeResult(outputs=(out,))


def _seeded_generator(seed: int) -> random.Random:
    """A deterministic generator: the same seed gives the same noise (not for security)."""
    return random.Random(seed)  # noqa: S311 - deterministic noise, not security


def _temp_suffix() -> str:
    return "_temp_" + "".join(secrets.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))


def _save_images(
    ctx: NodeContext,
    images: list[Image.Image],
    prefix: str,
    *,
    folder: Path,
    kind: str,
    compress_level: int,
) -> NodeResult:
    width, height = images[0].size
    target = get_save_image_path(prefix, folder, width, height)
    counter = target.counter
    results: list[dict[str, str]] = []
    for batch_number, image in enumerate(images):
        name = target.filename.replace("%batch_num%", str(batch_number))
        file = f"{name}_{counter:05}_.png"
        save_png(
            image,
            target.full_output_folder / file,
            prompt=ctx.prompt,
            extra_pnginfo=ctx.extra_pnginfo,
            compress_level=compress_level,
        )
        results.append({"filename": file, "subfolder": target.subfolder, "type": kind})
        counter += 1
    return NodeResult(ui={"images": results})


def save_image(ctx: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    return _save_images(
        ctx,
        _images(inputs["images"]),
        str(inputs["filename_prefix"]),
        folder=ctx.output_dir,
        kind="output",
        compress_level=4,
    )


def preview_image(ctx: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    return _save_images(
        ctx,
        _images(inputs["images"]),
        "ComfyUI" + _temp_suffix(),
        folder=ctx.temp_dir,
        kind="temp",
        compress_level=1,
    )


def save_animated_webp_node(ctx: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    images = _images(inputs["images"])
    width, height = images[0].size
    target = get_save_image_path(str(inputs["filename_prefix"]), ctx.output_dir, width, height)
    file = f"{target.filename}_{target.counter:05}_.webp"
    save_animated_webp(
        images,
        target.full_output_folder / file,
        fps=float(inputs["fps"]),
        lossless=bool(inputs["lossless"]),
        quality=int(inputs["quality"]),
        method=WEBP_METHODS[str(inputs["method"])],
        prompt=ctx.prompt,
        extra_pnginfo=ctx.extra_pnginfo,
    )
    result = {"filename": file, "subfolder": target.subfolder, "type": "output"}
    return NodeResult(ui={"images": [result], "animated": [len(images) > 1]})


# --- audio nodes -------------------------------------------------------------------------------


def empty_audio(_: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    sample_rate = int(inputs["sample_rate"])
    if sample_rate <= 0:
        raise ValueError(f"Invalid sample rate: {sample_rate}")
    channels = int(inputs["channels"])
    samples = round(float(inputs["duration"]) * sample_rate)
    clip = bytes(samples * channels * 4)
    return NodeResult(outputs=(Audio(sample_rate=sample_rate, channels=channels, clips=(clip,)),))


def _audio(value: Any) -> Audio:
    if not isinstance(value, Audio):
        raise TypeError(f"Expected AUDIO, got {type(value).__name__}")
    return value


def _save_audio(
    ctx: NodeContext, audio: Audio, prefix: str, *, folder: Path, kind: str
) -> NodeResult:
    target = get_save_image_path(prefix, folder)
    metadata: dict[str, str] = {}
    if ctx.prompt is not None:
        metadata["prompt"] = _json(ctx.prompt)
    for key, value in (ctx.extra_pnginfo or {}).items():
        metadata[key] = _json(value)
    counter = target.counter
    results: list[dict[str, str]] = []
    for batch_number in range(len(audio.clips)):
        name = target.filename.replace("%batch_num%", str(batch_number))
        file = f"{name}_{counter:05}_.flac"
        save_flac(audio, batch_number, target.full_output_folder / file, metadata=metadata)
        results.append({"filename": file, "subfolder": target.subfolder, "type": kind})
        counter += 1
    return NodeResult(ui={"audio": results})


def _json(value: Any) -> str:
    return json.dumps(value)


def save_audio(ctx: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    return _save_audio(
        ctx,
        _audio(inputs["audio"]),
        str(inputs["filename_prefix"]),
        folder=ctx.output_dir,
        kind="output",
    )


def preview_audio(ctx: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    return _save_audio(
        ctx, _audio(inputs["audio"]), "ComfyUI" + _temp_suffix(), folder=ctx.temp_dir, kind="temp"
    )


# --- gifs and 3D ------------------------------------------------------------------------------


def video_combine(ctx: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    """VideoHelperSuite's ``VHS_VideoCombine`` (a custom node): its files come back under
    ``gifs``, the output kind kiln must not drop. Only ``image/gif`` is simulated."""
    images = _images(inputs["images"])
    if str(inputs["format"]) != "image/gif":
        raise ValueError("the simulator writes only image/gif for VHS_VideoCombine")
    frames = images + images[-2:0:-1] if inputs.get("pingpong") else images
    save_output = bool(inputs.get("save_output", True))
    folder, kind = (ctx.output_dir, "output") if save_output else (ctx.temp_dir, "temp")
    width, height = frames[0].size
    target = get_save_image_path(str(inputs["filename_prefix"]), folder, width, height)
    file = f"{target.filename}_{target.counter:05}.gif"
    frame_rate = float(inputs["frame_rate"])
    save_gif(
        frames,
        target.full_output_folder / file,
        frame_rate=frame_rate,
        loop=int(inputs["loop_count"]),
    )
    result = {
        "filename": file,
        "subfolder": target.subfolder,
        "type": kind,
        "format": "image/gif",
        "frame_rate": frame_rate,
    }
    return NodeResult(ui={"gifs": [result]})


def sim_tetrahedron(_: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    """Not a ComfyUI node: a weight-free MESH source, since ComfyUI's meshes come from models."""
    size = float(inputs["size"])
    vertices = ((0.0, 0.0, 0.0), (size, 0.0, 0.0), (0.0, size, 0.0), (0.0, 0.0, size))
    faces = ((0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3))
    return NodeResult(outputs=(Mesh(vertices=vertices, faces=faces),))


def save_glb_node(ctx: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    mesh = inputs["mesh"]
    if not isinstance(mesh, Mesh):
        raise TypeError(f"Expected MESH, got {type(mesh).__name__}")
    target = get_save_image_path(str(inputs["filename_prefix"]), ctx.output_dir)
    file = f"{target.filename}_{target.counter:05}_.glb"
    metadata: dict[str, Any] = dict(ctx.extra_pnginfo or {})
    if ctx.prompt is not None:
        metadata["prompt"] = ctx.prompt
    save_glb(mesh, target.full_output_folder / file, metadata=metadata)
    return NodeResult(
        ui={"3d": [{"filename": file, "subfolder": target.subfolder, "type": "output"}]}
    )


# --- video nodes -------------------------------------------------------------------------------


def create_video(_: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    audio = inputs.get("audio")
    video = Video(
        frames=tuple(_images(inputs["images"])),
        frame_rate=Fraction(float(inputs["fps"])).limit_denominator(1001),
        audio=_audio(audio) if audio is not None else None,
    )
    return NodeResult(outputs=(video,))


def save_video(ctx: NodeContext, inputs: dict[str, Any]) -> NodeResult:
    video = inputs["video"]
    if not isinstance(video, Video):
        raise TypeError(f"Expected VIDEO, got {type(video).__name__}")
    container = str(inputs["format"])
    codec = str(inputs["codec"])
    if container not in ("auto", "mp4"):
        raise ValueError("Only MP4 format is supported for now")
    if codec not in ("auto", "h264"):
        raise ValueError("Only H264 codec is supported for now")
    width, height = video.dimensions()
    target = get_save_image_path(str(inputs["filename_prefix"]), ctx.output_dir, width, height)
    metadata: dict[str, Any] = dict(ctx.extra_pnginfo or {})
    if ctx.prompt is not None:
        metadata["prompt"] = ctx.prompt
    file = f"{target.filename}_{target.counter:05}_.mp4"
    save_mp4(video, target.full_output_folder / file, metadata=metadata or None)
    result = {"filename": file, "subfolder": target.subfolder, "type": "output"}
    return NodeResult(ui={"images": [result], "animated": [True]})


# --- the registry ------------------------------------------------------------------------------


def _int(default: int, minimum: int, maximum: int, **extra: Any) -> InputSpec:
    return ("INT", {"default": default, "min": minimum, "max": maximum, **extra})


def _float(default: float, minimum: float, maximum: float, step: float, **extra: Any) -> InputSpec:
    return ("FLOAT", {"default": default, "min": minimum, "max": maximum, "step": step, **extra})


def build_registry() -> dict[str, NodeDef]:
    """Every node the simulator can run, by class_type."""
    prefix = ("STRING", {"default": "ComfyUI", "tooltip": PREFIX_TOOLTIP})
    definitions = [
        NodeDef(
            class_type="EmptyImage",
            display_name="EmptyImage",
            category="image",
            function=empty_image,
            required={
                "width": _int(512, 1, MAX_RESOLUTION, step=1),
                "height": _int(512, 1, MAX_RESOLUTION, step=1),
                "batch_size": _int(1, 1, 4096),
                "color": _int(0, 0, 0xFFFFFF, step=1, display="color"),
            },
            return_types=("IMAGE",),
        ),
        NodeDef(
            class_type="LoadImage",
            display_name="Load Image",
            category="image",
            function=load_image,
            required={"image": (ModelList("input"), {"image_upload": True})},
            return_types=("IMAGE", "MASK"),
        ),
        NodeDef(
            class_type="ImageScale",
            display_name="Upscale Image",
            category="image/upscaling",
            function=image_scale,
            required={
                "image": ("IMAGE",),
                "upscale_method": (list(UPSCALE_METHODS),),
                "width": _int(512, 0, MAX_RESOLUTION, step=1),
                "height": _int(512, 0, MAX_RESOLUTION, step=1),
                "crop": (list(CROP_METHODS),),
            },
            return_types=("IMAGE",),
        ),
        NodeDef(
            class_type="ImageInvert",
            display_name="Invert Image",
            category="image",
            function=image_invert,
            required={"image": ("IMAGE",)},
            return_types=("IMAGE",),
        ),
        NodeDef(
            class_type="ImageBlur",
            display_name="Image Blur",
            category="image/postprocessing",
            function=image_blur,
            required={
                "image": ("IMAGE",),
                "blur_radius": _int(1, 1, 31, step=1),
                "sigma": _float(1.0, 0.1, 10.0, 0.1),
            },
            return_types=("IMAGE",),
            python_module="comfy_extras.nodes_post_processing",
        ),
        NodeDef(
            class_type="ImageAddNoise",
            display_name="ImageAddNoise",
            category="image",
            function=image_add_noise,
            required={
                "image": ("IMAGE",),
                "seed": _int(
                    0,
                    0,
                    SEED_MAX,
                    control_after_generate=True,
                    tooltip="The random seed used for creating the noise.",
                ),
                "strength": _float(0.5, 0.0, 1.0, 0.01),
            },
            return_types=("IMAGE",),
            python_module="comfy_extras.nodes_images",
        ),
        NodeDef(
            class_type="SaveImage",
            display_name="Save Image",
            category="image",
            function=save_image,
            required={
                "images": ("IMAGE", {"tooltip": "The images to save."}),
                "filename_prefix": prefix,
            },
            hidden=dict(HIDDEN_PROMPT),
            output_node=True,
            description="Saves the input images to your ComfyUI output directory.",
        ),
        NodeDef(
            class_type="PreviewImage",
            display_name="Preview Image",
            category="image",
            function=preview_image,
            required={"images": ("IMAGE",)},
            hidden=dict(HIDDEN_PROMPT),
            output_node=True,
            description="Saves the input images to your ComfyUI output directory.",
        ),
        NodeDef(
            class_type="SaveAnimatedWEBP",
            display_name="SaveAnimatedWEBP",
            category="image/animation",
            function=save_animated_webp_node,
            required={
                "images": ("IMAGE",),
                "filename_prefix": ("STRING", {"default": "ComfyUI"}),
                "fps": _float(6.0, 0.01, 1000.0, 0.01),
                "lossless": ("BOOLEAN", {"default": True}),
                "quality": _int(80, 0, 100),
                "method": (list(WEBP_METHODS),),
            },
            hidden=dict(HIDDEN_PROMPT),
            output_node=True,
            python_module="comfy_extras.nodes_images",
        ),
        NodeDef(
            class_type="EmptyAudio",
            display_name="Empty Audio",
            category="audio",
            function=empty_audio,
            required={
                "duration": _float(
                    60.0,
                    0.0,
                    SEED_MAX,
                    0.01,
                    tooltip="Duration of the empty audio clip in seconds",
                ),
                "sample_rate": (
                    "INT",
                    {"default": 44100, "tooltip": "Sample rate of the empty audio clip."},
                ),
                "channels": _int(
                    2, 1, 2, tooltip="Number of audio channels (1 for mono, 2 for stereo)."
                ),
            },
            return_types=("AUDIO",),
            python_module="comfy_extras.nodes_audio",
        ),
        NodeDef(
            class_type="SaveAudio",
            display_name="Save Audio (FLAC)",
            category="audio",
            function=save_audio,
            required={
                "audio": ("AUDIO",),
                "filename_prefix": ("STRING", {"default": "audio/ComfyUI"}),
            },
            hidden=dict(HIDDEN_PROMPT),
            output_node=True,
            python_module="comfy_extras.nodes_audio",
        ),
        NodeDef(
            class_type="PreviewAudio",
            display_name="Preview Audio",
            category="audio",
            function=preview_audio,
            required={"audio": ("AUDIO",)},
            hidden=dict(HIDDEN_PROMPT),
            output_node=True,
            python_module="comfy_extras.nodes_audio",
        ),
        NodeDef(
            class_type="CreateVideo",
            v3=True,
            display_name="Create Video",
            category="image/video",
            function=create_video,
            required={
                "images": ("IMAGE", {"tooltip": "The images to create a video from."}),
                "fps": _float(30.0, 1.0, 120.0, 1.0),
            },
            optional={"audio": ("AUDIO", {"tooltip": "The audio to add to the video."})},
            return_types=("VIDEO",),
            description="Create a video from images.",
            python_module="comfy_extras.nodes_video",
        ),
        NodeDef(
            class_type="SaveVideo",
            v3=True,
            display_name="Save Video",
            category="image/video",
            function=save_video,
            required={
                "video": ("VIDEO", {"tooltip": "The video to save."}),
                "filename_prefix": (
                    "STRING",
                    {"default": "video/ComfyUI", "tooltip": PREFIX_TOOLTIP},
                ),
                "format": (
                    list(VIDEO_CONTAINERS),
                    {"default": "auto", "tooltip": "The format to save the video as."},
                ),
                "codec": (
                    list(VIDEO_CODECS),
                    {"default": "auto", "tooltip": "The codec to use for the video."},
                ),
            },
            hidden=dict(HIDDEN_PROMPT),
            output_node=True,
            description="Saves the input images to your ComfyUI output directory.",
            python_module="comfy_extras.nodes_video",
        ),
        NodeDef(
            class_type="VHS_VideoCombine",
            display_name="Video Combine 🎥🅥🅗🅢",
            category="Video Helper Suite 🎥🅥🅗🅢",
            function=video_combine,
            required={
                "images": ("IMAGE",),
                "frame_rate": _float(8.0, 1.0, 120.0, 1.0),
                "loop_count": _int(0, 0, 100),
                "filename_prefix": ("STRING", {"default": "AnimateDiff"}),
                "format": (VHS_FORMATS,),
                "pingpong": ("BOOLEAN", {"default": False}),
                "save_output": ("BOOLEAN", {"default": True}),
            },
            hidden=dict(HIDDEN_PROMPT),
            output_node=True,
            python_module="custom_nodes.ComfyUI-VideoHelperSuite",
        ),
        NodeDef(
            class_type="SimTetrahedron",
            display_name="Tetrahedron (simulator only)",
            category="3d",
            function=sim_tetrahedron,
            required={"size": _float(1.0, 0.01, 100.0, 0.01)},
            return_types=("MESH",),
            description="Not in ComfyUI: a mesh without a model, for testing 3D outputs.",
        ),
        NodeDef(
            class_type="SaveGLB",
            display_name="Save 3D Model",
            category="3d",
            function=save_glb_node,
            required={
                "mesh": ("MESH",),
                "filename_prefix": ("STRING", {"default": "mesh/ComfyUI"}),
            },
            hidden=dict(HIDDEN_PROMPT),
            output_node=True,
            python_module="comfy_extras.nodes_hunyuan3d",
        ),
    ]
    return {definition.class_type: definition for definition in definitions}
