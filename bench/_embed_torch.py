"""Child of bench/embed.py, run by an interpreter with the [export] extra: open_clip/torch on the same pixels.

python bench/_embed_torch.py PIXELS.npz VECTORS.npy ROUNDS   -> prints {"ips": .., "torch": ..}
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import torch

from ml_export.export import create_clip


def main(pixels_path: str, vectors_path: str, rounds: int) -> int:
    """Time encode_image at the bench's batch size; save the first round's unit vectors."""
    torch.set_num_threads(os.cpu_count() or 1)
    model, _ = create_clip("ViT-B-32", "none", seed=0)  # the weights bench/embed.py exported
    batches = [torch.from_numpy(b) for b in np.load(pixels_path)["batches"]]
    best = 0.0
    vectors: list[np.ndarray] = []
    with torch.inference_mode():
        model.encode_image(batches[0])  # warm-up
        for _round in range(rounds):
            started = time.perf_counter()
            out = [model.encode_image(b, normalize=True).numpy() for b in batches]
            best = max(best, sum(len(b) for b in batches) / (time.perf_counter() - started))
            vectors = vectors or out
    np.save(vectors_path, np.concatenate(vectors))
    print(json.dumps({"ips": best, "torch": torch.__version__, "threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
