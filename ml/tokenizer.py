"""CLIP's byte-level BPE tokenizer (open_clip's SimpleTokenizer) in plain Python and NumPy."""

from __future__ import annotations

import functools
import gzip
import html
from collections.abc import Sequence
from pathlib import Path

import ftfy
import numpy as np
import regex

SOT, EOT = "<start_of_text>", "<end_of_text>"
_PATTERN = SOT + "|" + EOT + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """The reversible byte -> printable character table of GPT-2/CLIP BPE."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def clean(text: str) -> str:
    """open_clip's 'lower' cleaning: ftfy, html unescape twice, collapse whitespace, lower case."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).strip().lower()


class ClipTokenizer:
    """Text -> int64 token ids `[sot] + bpe + [eot]`, truncated to the context (last kept = eot), 0-padded."""

    def __init__(self, vocab_path: Path, context_length: int = 77) -> None:
        merges_text = gzip.open(vocab_path).read().decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in merges_text[1 : 49152 - 256 - 2 + 1]]
        vocab = list(bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges] + [SOT, EOT]
        self.encoder = {token: index for index, token in enumerate(vocab)}
        self.ranks = {merge: rank for rank, merge in enumerate(merges)}
        self.cache: dict[str, str] = {SOT: SOT, EOT: EOT}
        self.pattern = regex.compile(_PATTERN, regex.IGNORECASE)
        self.sot_id, self.eot_id = self.encoder[SOT], self.encoder[EOT]
        self.context_length = context_length
        self.byte_encoder = bytes_to_unicode()

    def bpe(self, token: str) -> str:
        """Merge one pre-token's symbols by rank; returns space-separated BPE units."""
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda pair: self.ranks.get(pair, float("inf")))
            if best not in self.ranks:
                break
            word = _merge(word, best)
        result = " ".join(word)
        self.cache[token] = result
        return result

    def encode(self, text: str) -> list[int]:
        """The BPE ids of `text` (no start/end tokens)."""
        ids: list[int] = []
        for token in self.pattern.findall(clean(text)):
            mapped = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[unit] for unit in self.bpe(mapped).split(" "))
        return ids

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), context_length) int64 array of token ids."""
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            tokens = [self.sot_id, *self.encode(text), self.eot_id]
            if len(tokens) > self.context_length:
                tokens = tokens[: self.context_length]
                tokens[-1] = self.eot_id
            out[row, : len(tokens)] = tokens
        return out


def _merge(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    first, second = pair
    merged: list[str] = []
    i = 0
    while i < len(word):
        if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
            merged.append(first + second)
            i += 2
        else:
            merged.append(word[i])
            i += 1
    return tuple(merged)


def trim(tokens: np.ndarray) -> np.ndarray:
    """Cut the padding after the batch's last end-of-text token.

    Exact for CLIP: its text tower is causal, so positions up to each row's (first) eot,
    where the features are pooled, never see the cut positions.
    """
    if tokens.size == 0:
        return tokens
    longest = int(tokens.argmax(axis=1).max()) + 1  # eot is the largest id
    return np.ascontiguousarray(tokens[:, :longest])
