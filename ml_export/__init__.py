"""Exporting open_clip checkpoints to ONNX model directories: needs the `[export]` extra (torch)."""
