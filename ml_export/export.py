"""Export an open_clip checkpoint to a model directory that `ml.clip.ClipModel` runs without torch."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from ml.manifest import ImageSpec, Manifest, TextSpec, sha256_file
from ml_export.graph import streamline

OPSET = 20
RANDOM = ("none", "random")
BATCH = ("batch", 1, 4096)


class ExportError(Exception):
    """The checkpoint cannot be loaded or exported (the reason is the message)."""


class ImageTower(nn.Module):
    """(batch, 3, size, size) float32 -> (batch, dim) unit vectors."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_image(image), dim=-1)


class TextTower(nn.Module):
    """(batch, length <= context) int64 -> (batch, dim) unit vectors, for any length.

    open_clip's encode_text adds all 77 positional embeddings, so it only takes padded
    input; this is the same computation with positions and causal mask cut to the length.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        m = self.model
        length = text.shape[1]
        x = m.token_embedding(text) + m.positional_embedding[:length]
        x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask[:length, :length]))
        x = x[torch.arange(x.shape[0]), text.argmax(dim=-1)]
        x = m.text_projection(x) if isinstance(m.text_projection, nn.Linear) else x @ m.text_projection
        return F.normalize(x, dim=-1)


def register_config(name: str, config: dict[str, Any]) -> None:
    """Make an open_clip model config available under `name` (for test-sized models)."""
    import json

    directory = Path(tempfile.mkdtemp(prefix="backroom-clip-config-"))
    (directory / f"{name}.json").write_text(json.dumps(config))
    open_clip.add_model_config(directory)


def create_clip(arch: str, pretrained: str, *, seed: int = 0) -> tuple[nn.Module, dict[str, Any]]:
    """An eval-mode open_clip model and what identifies its weights (tag, file hash, or seed)."""
    kwargs: dict[str, Any] = {"force_quick_gelu": pretrained == "openai" and "quickgelu" not in arch}
    if pretrained.lower() in RANDOM:
        torch.manual_seed(seed)
        weights: dict[str, Any] = {"pretrained": None, "seed": seed, "model_id": f"{arch}/random-seed{seed}"}
        source = None
    elif Path(pretrained).is_file():
        digest = sha256_file(Path(pretrained))
        weights = {"pretrained": None, "checkpoint_sha256": digest, "model_id": f"{arch}/sha256-{digest[:16]}"}
        source = str(Path(pretrained).resolve())
    else:
        weights = {"pretrained": pretrained, "model_id": f"{arch}/{pretrained}"}
        source = pretrained
    try:
        model = open_clip.create_model(arch, pretrained=source, **kwargs)
    except Exception as error:  # open_clip raises RuntimeError/ValueError/hub errors alike
        raise ExportError(
            f"cannot load {arch} with {pretrained!r}: {error} "
            "(offline, pass a local checkpoint file instead of a hub tag)"
        ) from None
    return model.eval(), weights


def _export(
    module: nn.Module, example: torch.Tensor, path: Path, name: str, axes: dict[int, tuple[str, int, int]]
) -> None:
    # torch.export keeps the sequence length symbolic through attention (the TorchScript
    # exporter bakes the traced length into nn.MultiheadAttention's reshapes)
    torch.backends.mha.set_fastpath_enabled(False)  # the fused fast path has no ONNX form
    dims = {axis: torch.export.Dim(label, min=low, max=high) for axis, (label, low, high) in axes.items()}
    with torch.no_grad():
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=[name],
            output_names=["vector"],
            dynamic_shapes=(dims,),
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
        )


def quantize(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the MatMul/Gemm weights (for edge devices)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)


def _specs(model: nn.Module) -> tuple[ImageSpec, TextSpec, int]:
    cfg = model.visual.preprocess_cfg
    size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
    image = ImageSpec(
        size=size,
        resize_mode=cfg.get("resize_mode", "shortest"),
        interpolation=cfg.get("interpolation", "bicubic"),
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
    )
    text = TextSpec(context_length=model.context_length, vocab_size=model.vocab_size)
    return (
        image,
        text,
        int(
            model.text_projection.shape[-1]
            if not isinstance(model.text_projection, nn.Linear)
            else model.text_projection.out_features
        ),
    )


def _probe(model: nn.Module, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(2, 3, size, size, generator=generator)
    text = torch.randint(1, 49000, (2, model.context_length), generator=generator)
    text[:, -1] = 49407
    with torch.no_grad():
        return model.encode_image(image, normalize=True), model.encode_text(text, normalize=True)


def _check_same(before: tuple[torch.Tensor, ...], after: tuple[torch.Tensor, ...]) -> None:
    for a, b in zip(before, after):
        if not torch.allclose(a, b, atol=1e-4):
            raise ExportError("the export-friendly blocks changed the model's outputs (unsupported open_clip version?)")


def export_model(
    arch: str, pretrained: str, out: Path, *, int8: bool = False, seed: int = 0, semantic: bool | None = None
) -> Manifest:
    """Export `arch` with `pretrained` (hub tag, checkpoint file, or 'none' for seeded random) to `out`."""
    model, weights = create_clip(arch, pretrained, seed=seed)
    if not hasattr(model, "attn_mask"):
        raise ExportError(f"{arch} is not a plain CLIP (custom text towers are not supported)")
    image_spec, text_spec, dim = _specs(model)
    reference = _probe(model, image_spec.size)
    streamline(model)
    _check_same(reference, _probe(model, image_spec.size))
    out.mkdir(parents=True, exist_ok=True)
    _export(
        ImageTower(model), torch.randn(2, 3, image_spec.size, image_spec.size), out / "image.onnx", "image", {0: BATCH}
    )
    _export(
        TextTower(model),
        torch.randint(1, 1000, (2, text_spec.context_length)),
        out / "text.onnx",
        "text",
        {0: BATCH, 1: ("length", 2, text_spec.context_length)},
    )
    names = ["image.onnx", "text.onnx"]
    if int8:
        for tower in ("image", "text"):
            quantize(out / f"{tower}.onnx", out / f"{tower}.int8.onnx")
        names += ["image.int8.onnx", "text.int8.onnx"]
    shutil.copyfile(Path(open_clip.__file__).parent / text_spec.vocab_file, out / text_spec.vocab_file)
    names.append(text_spec.vocab_file)
    manifest = Manifest(
        model_id=weights["model_id"],
        arch=arch,
        embed_dim=dim,
        pretrained=weights.get("pretrained"),
        checkpoint_sha256=weights.get("checkpoint_sha256"),
        semantic=(weights.get("seed") is None) if semantic is None else semantic,
        image=image_spec,
        text=text_spec,
        files={name: sha256_file(out / name) for name in names},
        exported_with={
            "open_clip": open_clip.__version__,
            "torch": torch.__version__.split("+")[0],
            "opset": str(OPSET),
        },
    )
    (out / "manifest.json").write_text(manifest.to_json())
    return manifest
