"""A FLOPs estimate for a run: ``2 × parameters × tokens``, labelled as an estimate.

Parameters counted: every weight the forward pass multiplies by, i.e. all parameters
except the input embedding table (a lookup, not a matmul); the LM head counts, also when
its weights are tied to the embedding. Tokens: real input tokens plus generated tokens
(no padding). Left out: attention over the context (grows with sequence length), padding
in static batches, and the sampling step, so it is a lower bound of the work done.
"""

from __future__ import annotations

from typing import Any

FLOPS_METHOD = (
    "estimate: 2 x parameters x (input + output tokens); parameters exclude the input "
    "embedding table and include the LM head; attention over the context and padding "
    "are not counted"
)


def parameter_counts(model: Any) -> dict[str, Any]:
    """Parameter counts of a torch ``PreTrainedModel``: total, embedding, the ones FLOPs use."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tied = head is not None and head.weight.data_ptr() == embedding.data_ptr()
    counted = total - embedding.numel() + (embedding.numel() if tied else 0)
    return {
        "parameters": int(total),
        "parameters_embedding": int(embedding.numel()),
        "tied_embeddings": bool(tied),
        "parameters_for_flops": int(counted),
    }


def flops_estimate(parameters: int | None, tokens: int | None) -> float | None:
    """``2 × parameters × tokens``; None when either is unknown."""
    if parameters is None or tokens is None:
        return None
    return 2.0 * parameters * tokens
