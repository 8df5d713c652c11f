"""Export-friendly transformer blocks: the same maths as open_clip's, in fewer, larger ONNX ops.

nn.MultiheadAttention exports as dozens of reshapes and transposes per layer, and 3-D
Linear layers as MatMul + a separate bias Add. Here every Linear sees (tokens, width), so
ONNX Runtime runs each as one Gemm with its bias, and attention is one fused qkv projection
plus scaled_dot_product_attention.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock
from torch import nn


def _attention(attn: nn.MultiheadAttention, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    batch, length, width = x.shape
    heads = attn.num_heads
    qkv = F.linear(x.reshape(batch * length, width), attn.in_proj_weight, attn.in_proj_bias)
    qkv = qkv.reshape(batch, length, 3, heads, width // heads).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask)
    out = out.transpose(1, 2).reshape(batch * length, width)
    return F.linear(out, attn.out_proj.weight, attn.out_proj.bias).reshape(batch, length, width)


def _block_forward(
    block: ResidualAttentionBlock,
    q_x: torch.Tensor,
    k_x: torch.Tensor | None = None,
    v_x: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    batch, length, width = q_x.shape
    mask = attn_mask.to(q_x.dtype) if attn_mask is not None else None
    x = q_x + block.ls_1(_attention(block.attn, block.ln_1(q_x), mask))
    mlp = block.mlp(block.ln_2(x).reshape(batch * length, width)).reshape(batch, length, width)
    return x + block.ls_2(mlp)


def streamline(model: nn.Module) -> int:
    """Swap every plain self-attention block's forward for the export-friendly one; returns how many."""
    swapped = 0
    for module in model.modules():
        plain = (
            type(module) is ResidualAttentionBlock
            and not hasattr(module, "ln_1_kv")
            and module.attn.batch_first
            and module.attn._qkv_same_embed_dim
        )
        if plain:
            module.forward = types.MethodType(_block_forward, module)
            swapped += 1
    return swapped
