"""The CLIP runtime without torch: Pillow/NumPy preprocessing, a BPE tokenizer, ONNX Runtime sessions."""
