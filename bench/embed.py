"""Embedding throughput on CLIP ViT-B-32 (random weights: speed and parity, not meaning).

    python bench/embed.py        # a few minutes on 2 cores

Our ONNX fp32 and int8 paths and open_clip/torch on the same preprocessed batches of 8, the
machine's float32 matmul ceiling (ViT-B-32 costs 8.8 GFLOP per image), cosine parity, the
preprocessing share of per-image time and the text-trimming speedup. torch comes from this
interpreter when it has the [export] extra, else from BACKROOM_EXPORT_PYTHON (an interpreter
that has it); without either, torch figures are n/a. The exported ONNX model is cached in
$BACKROOM_CACHE (default ~/.cache/backroom), never in the repo.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ml.clip import ClipModel  # noqa: E402
from ml.preprocess import preprocess, preprocess_batch  # noqa: E402

BATCH = 8
GFLOP_PER_IMAGE = 8.8
ROUNDS = 4
CACHE = Path(os.environ.get("BACKROOM_CACHE", Path.home() / ".cache" / "backroom")) / "bench" / "vit-b-32-random"
QUERIES = [
    "black leather jacket",
    "vintage denim",
    "y2k silver chain",
    "chunky knit scarf",
    "wide leg trousers",
    "oversized grey hoodie",
    "gorpcore fleece",
    "90s windbreaker",
] * 8


def say(line: str) -> None:
    """Print a progress line at once."""
    print(line, flush=True)


def torch_python() -> str | None:
    """An interpreter with torch + open_clip: this one, else $BACKROOM_EXPORT_PYTHON."""
    if importlib.util.find_spec("torch") and importlib.util.find_spec("open_clip"):
        return sys.executable
    candidate = os.environ.get("BACKROOM_EXPORT_PYTHON")
    return candidate if candidate and Path(candidate).exists() else None


def ensure_model(python: str | None) -> Path | None:
    """The cached fp32+int8 export of random ViT-B-32, exported by our own code when missing."""
    if (CACHE / "manifest.json").exists() and (CACHE / "image.int8.onnx").exists():
        return CACHE
    if python is None:
        return None
    say(f"exporting ViT-B-32 (random weights, seed 0) with --int8 to {CACHE} (about a minute)…")
    command = [
        python,
        "-m",
        "cli.main",
        "models",
        "export",
        "--arch",
        "ViT-B-32",
        "--pretrained",
        "none",
        "--seed",
        "0",
        "--out",
        str(CACHE),
        "--int8",
    ]
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return CACHE


def matmul_ceiling() -> tuple[float, str]:
    """Best float32 matmul GFLOP/s of NumPy here, with the OpenBLAS core-type overrides lifted."""
    code = (
        "import numpy as np,time;n=2048;a=np.random.rand(n,n).astype(np.float32);b=a.copy();a@b;"
        "best=min((lambda t:(a@b,time.perf_counter()-t)[1])(time.perf_counter()) for _ in range(20));"
        "print(2*n**3/best/1e9)"
    )
    figures = {}
    for label, env in (
        ("as set", dict(os.environ)),
        ("OPENBLAS_CORETYPE unset", {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}),
    ):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        figures[label] = float(out.stdout.strip())
    label = max(figures, key=figures.get)
    return figures[label], ", ".join(f"{k}: {v:.0f}" for k, v in figures.items())


def photo(seed: int) -> bytes:
    """A marketplace-sized textured JPEG (1000x1333)."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (1000, 1333), tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(25):
        x, y, r = rng.uniform(0, 1000), rng.uniform(0, 1333), rng.uniform(20, 300)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    noise = rng.normal(0, 12, (1333, 1000, 1))
    pixels = np.clip(np.asarray(image.filter(ImageFilter.GaussianBlur(2)), np.float32) + noise, 0, 255)
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(out, "JPEG", quality=88)
    return out.getvalue()


def best_rate(run: Callable[[], object], items: int, rounds: int = ROUNDS) -> float:
    """Items per second of the fastest of `rounds` runs (other processes share these cores)."""
    run()
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return items / best


def onnx_figures(model: ClipModel, batches: list[np.ndarray]) -> tuple[float, np.ndarray]:
    """Images/s over the batches, and the unit vectors."""
    ips = best_rate(lambda: [model.embed_pixels(b) for b in batches], sum(len(b) for b in batches))
    return ips, np.concatenate([model.embed_pixels(b) for b in batches])


def torch_figures(python: str, batches: list[np.ndarray]) -> tuple[float, np.ndarray, str]:
    """open_clip/torch images/s and vectors on the same pixels (a child process with torch)."""
    with tempfile.TemporaryDirectory() as temp:
        np.savez(Path(temp) / "pixels.npz", batches=np.stack(batches))
        out = subprocess.run(
            [
                python,
                str(REPO / "bench" / "_embed_torch.py"),
                str(Path(temp) / "pixels.npz"),
                str(Path(temp) / "vectors.npy"),
                str(ROUNDS),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        report = json.loads(out.stdout.strip().splitlines()[-1])
        return (
            report["ips"],
            np.load(Path(temp) / "vectors.npy"),
            f"torch {report['torch']}, {report['threads']} threads",
        )


def speeds(fp32: ClipModel, int8: ClipModel, python: str | None, batches: list[np.ndarray]) -> tuple:
    """(ips, vectors) of fp32 and int8, and (ips, vectors, detail) of torch or None: best of two interleaved
    passes, so that other processes on these cores hit every path alike."""
    best: list = [(0.0, None), (0.0, None), None]
    for _ in range(2):
        for slot, model in ((0, fp32), (1, int8)):
            ips, vectors = onnx_figures(model, batches)
            best[slot] = max(best[slot], (ips, vectors), key=lambda pair: pair[0])
        if python is not None:
            run = torch_figures(python, batches)
            best[2] = run if best[2] is None or run[0] > best[2][0] else best[2]
    return tuple(best)


def preprocessing_seconds(images: list[bytes], model: ClipModel, *, draft: bool) -> float:
    """Wall seconds per image to decode + preprocess batches of 8 as the runtime does (threads per core)."""
    batches = [images[i : i + BATCH] for i in range(0, len(images), BATCH)]
    return 1.0 / best_rate(
        lambda: [preprocess_batch(b, model.manifest.image, draft=draft) for b in batches], len(images)
    )


def text_trim_speedup(model: ClipModel) -> tuple[float, int]:
    """Padded-to-77 time over trimmed time for a batch of short queries, and the trimmed length."""
    from ml.tokenizer import trim

    padded = model.tokenizer(QUERIES)
    trimmed = trim(padded)
    np.testing.assert_allclose(model.embed_tokens(trimmed), model.embed_tokens(padded), atol=1e-4)
    full = best_rate(lambda: model.embed_tokens(padded), len(QUERIES), rounds=5)
    short = best_rate(lambda: model.embed_tokens(trimmed), len(QUERIES), rounds=5)
    return short / full, trimmed.shape[1]


def cosine(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and minimum row-wise cosine of two sets of unit vectors."""
    rows = (a * b).sum(axis=1)
    return float(rows.mean()), float(rows.min())


def fmt(value: float | None, digits: int = 2) -> str:
    """A figure, or n/a."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def main() -> int:
    """Run every measurement and print the figures; the last line is the summary."""
    python = torch_python()
    directory = ensure_model(python)
    if directory is None:
        say("no cached ViT-B-32 export and no torch (install the [export] extra or set BACKROOM_EXPORT_PYTHON)")
        say(
            "bench: embed onnx_fp32_ips=n/a onnx_int8_ips=n/a torch_ips=n/a fp32_vs_torch=n/a fp32_of_ceiling=n/a "
            "int8_vs_torch=n/a int8_cos=n/a text_trim_speedup=n/a"
        )
        return 0
    ceiling, ceiling_detail = max(matmul_ceiling(), matmul_ceiling())  # best of two: other processes share the cores
    say(
        f"float32 matmul ceiling: {ceiling:.0f} GFLOP/s ({ceiling_detail}) = {ceiling / GFLOP_PER_IMAGE:.1f} "
        f"ViT-B-32 images/s at {GFLOP_PER_IMAGE} GFLOP each"
    )
    images = [photo(i) for i in range(4 * BATCH)]
    fp32 = ClipModel.load(directory)
    pixels = np.stack([preprocess(d, fp32.manifest.image) for d in images])
    batches = [pixels[i : i + BATCH] for i in range(0, len(pixels), BATCH)]
    int8 = ClipModel.load(directory, precision="int8")
    (fp32_ips, fp32_vectors), (int8_ips, int8_vectors), torch_run = speeds(fp32, int8, python, batches)
    torch_ips = None if torch_run is None else torch_run[0]
    say(
        f"onnx fp32: {fp32_ips:.2f} images/s at batch {BATCH}"
        f" ({fp32_ips * GFLOP_PER_IMAGE / ceiling:.0%} of the ceiling)"
    )
    int8_cos, int8_min = cosine(int8_vectors, fp32_vectors)
    say(f"onnx int8: {int8_ips:.2f} images/s, cosine to fp32 mean {int8_cos:.4f} min {int8_min:.4f}")
    if torch_run is not None:
        mean, low = cosine(torch_run[1], fp32_vectors)
        say(
            f"open_clip/torch: {torch_ips:.2f} images/s ({torch_run[2]}); onnx fp32 cosine to torch mean {mean:.6f} "
            f"min {low:.6f}"
        )
    else:
        say("open_clip/torch: n/a (no torch here and BACKROOM_EXPORT_PYTHON unset)")
    drafted = preprocessing_seconds(images, fp32, draft=True)
    full = preprocessing_seconds(images, fp32, draft=False)
    share = drafted / (drafted + 1 / fp32_ips)
    say(
        f"preprocessing (batches of {BATCH}, a thread per core): {drafted * 1000:.1f} ms/image with JPEG draft"
        f" ({full * 1000:.1f} ms without) = "
        f"{share:.0%} of per-image time"
    )
    speedup, length = text_trim_speedup(fp32)
    say(
        f"text: {len(QUERIES)} queries trimmed to {length} tokens run {speedup:.1f}x faster"
        " than padded to 77 (same vectors)"
    )
    ratio = None if torch_ips is None else fp32_ips / torch_ips
    int8_ratio = None if torch_ips is None else int8_ips / torch_ips
    say(
        f"bench: embed onnx_fp32_ips={fmt(fp32_ips)} onnx_int8_ips={fmt(int8_ips)} torch_ips={fmt(torch_ips)} "
        f"fp32_vs_torch={fmt(ratio)} fp32_of_ceiling={fmt(fp32_ips * GFLOP_PER_IMAGE / ceiling)} "
        f"int8_vs_torch={fmt(int8_ratio)} int8_cos={fmt(int8_cos, 4)} text_trim_speedup={fmt(speedup, 1)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
