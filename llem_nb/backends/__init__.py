"""Layer 3, backends: turning prompts into tokens, with honest counts and timestamps.

Owns ``Backend`` (the base class that plugins subclass), the PyTorch/transformers and
vLLM backends and their private helpers, the prompt datasets and the demo and tiny
models. Backends are found by name through ``llem_nb.config.plugins``. Imports config
and energy (GPU → NVML mapping).
"""
