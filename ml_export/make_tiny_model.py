"""Build the tiny CLIP-shaped test model, its test images and golden vectors (run once, with torch).

    python -m ml_export.make_tiny_model      # in a venv with the [export] extra

The model is a small open_clip config with seeded random weights, exported by our own export
code into ml/tiny_model/; the golden vectors are open_clip/torch's own outputs on real
JPEG/PNG/WebP files, so CI (no torch) can check our Pillow/NumPy/ONNX path against them.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import open_clip
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageOps
from torchvision.transforms import Compose

from ml.manifest import TINY_MODEL_DIR
from ml_export.export import create_clip, export_model, register_config

ARCH = "backroom-tiny-clip"
SEED = 20261122
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tiny-clip"
# 224 px images and 512-d vectors like ViT-B-32 (so preprocessing and vector(512) are the real
# ones). Average pooling makes the random image tower depend on every patch (with the class
# token, all random-model vectors look alike and a preprocessing mistake could pass unseen).
TINY_CONFIG = {
    "embed_dim": 512,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 32, "pool_type": "avg"},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 8, "heads": 2, "layers": 2},
}
TEXTS = [
    "a black leather biker jacket",
    "Vintage Levi's 501 jeans, light wash — size 32",
    "chunky knit wool scarf &amp; gloves",
    "🔥 rare Y2K silver chain necklace 🔥",
    "",
    " ".join(["an extremely long description of an oversized grey hoodie"] * 12),
]


def scene(width: int, height: int, seed: int, texture: bool = True) -> Image.Image:
    """A synthetic photo: a gradient with shapes, textured unless huge (which must stay small on disk)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([(x / width) * 255, (y / height) * 255, ((x + y) / (width + height)) * 255], axis=-1)
    image = Image.fromarray((base * rng.uniform(0.4, 1.0, 3)).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.05, 0.3) * min(width, height)
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0 - r, y0 - r, x0 + r, y0 + r), fill=color)
    image = image.filter(ImageFilter.GaussianBlur(max(1, min(width, height) // 200)))
    if not texture:
        return image
    stripes = 40 * np.sin(x / rng.uniform(1.5, 4.0) + y / rng.uniform(3.0, 9.0))[..., None]
    return Image.fromarray(np.clip(np.asarray(image, np.float32) + stripes, 0, 255).astype(np.uint8), "RGB")


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _exif_rotated() -> bytes:
    upright = scene(480, 640, 2)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display; stored sideways
    return _save(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90, exif=exif.tobytes())


def test_images() -> dict[str, bytes]:
    """The fixture images: formats, modes and sizes the runtime must handle like open_clip."""
    rgba = scene(400, 300, 4).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((400, 300)))
    return {
        "photo.jpg": _save(scene(640, 480, 1), "JPEG", quality=90),
        "portrait_exif6.jpg": _exif_rotated(),
        "gray.png": _save(scene(300, 500, 3).convert("L"), "PNG"),
        "gray.jpg": _save(scene(900, 600, 8).convert("L"), "JPEG", quality=90),
        "rgba.png": _save(rgba, "PNG"),
        "palette.png": _save(scene(256, 256, 5).quantize(64), "PNG"),
        "tiny.png": _save(scene(8, 8, 6), "PNG"),
        "wide.webp": _save(scene(700, 300, 7), "WEBP", quality=90),
        "huge.jpg": _save(scene(4000, 3000, 9, texture=False), "JPEG", quality=85),
        "broken.jpg": _save(scene(640, 480, 10), "JPEG", quality=90)[:2000],
    }


def reference(model: torch.nn.Module, images: dict[str, bytes]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """open_clip's own resize+crop (uint8) and preprocess + encode_image for each decodable image."""
    _, _, preprocess = open_clip.create_model_and_transforms(ARCH, pretrained=None)
    resize_crop = Compose(preprocess.transforms[:2])
    out = {}
    for name, data in images.items():
        if name.startswith("broken"):
            continue
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
        with torch.no_grad():
            vector = model.encode_image(preprocess(image)[None], normalize=True)[0].numpy()
        out[name] = (np.asarray(resize_crop(image), dtype=np.uint8), vector)
    return out


def main() -> int:
    """Export the tiny model, write the fixture images and the golden vectors."""
    register_config(ARCH, TINY_CONFIG)
    manifest = export_model(ARCH, "none", TINY_MODEL_DIR, seed=SEED, semantic=False)
    model, _ = create_clip(ARCH, "none", seed=SEED)  # the same seeded weights again
    images = test_images()
    (FIXTURES / "images").mkdir(parents=True, exist_ok=True)
    for name, data in images.items():
        (FIXTURES / "images" / name).write_bytes(data)
    golden = reference(model, images)
    tokens = open_clip.get_tokenizer(ARCH)(TEXTS)
    with torch.no_grad():
        text_vectors = model.encode_text(tokens, normalize=True).numpy()
    np.savez_compressed(
        FIXTURES / "golden.npz",
        image_names=np.array(list(golden)),
        pixels=np.stack([p for p, _ in golden.values()]),
        images=np.stack([v for _, v in golden.values()]),
        tokens=tokens.numpy(),
        texts=text_vectors,
    )
    (FIXTURES / "texts.json").write_text(json.dumps(TEXTS, ensure_ascii=False, indent=2) + "\n")
    print(f"exported {manifest.model_id} to {TINY_MODEL_DIR}; {len(golden)} golden images, {len(TEXTS)} texts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
