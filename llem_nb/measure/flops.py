"""A FLOPs estimate for a run: ``2 × parameters × tokens``, labelled as an estimate.

Parameters counted (by the backend, ``parameters_for_flops`` in the environment record):
every weight the forward pass multiplies by, i.e. all parameters except the input
embedding table (a lookup, not a matmul); the LM head counts, also when its weights are
tied to the embedding. Tokens: real input tokens plus generated tokens
(no padding). Left out: attention over the context (grows with sequence length), padding
in static batches, and the sampling step, so it is a lower bound of the work done.
"""

from __future__ import annotations

FLOPS_METHOD = (
    "estimate: 2 x parameters x (input + output tokens); parameters exclude the input "
    "embedding table and include the LM head; attention over the context and padding "
    "are not counted"
)


def flops_estimate(parameters: int | None, tokens: int | None) -> float | None:
    """``2 × parameters × tokens``; None when either is unknown."""
    if parameters is None or tokens is None:
        return None
    return 2.0 * parameters * tokens
