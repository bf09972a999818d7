"""``pynvml`` as a container sees it under the NVIDIA runtime, simulated: exactly the GPUs
``NVIDIA_VISIBLE_DEVICES`` names (what Docker's ``nvidia`` DeviceRequest set), nothing else.

Mounted into a container and put first on its ``PYTHONPATH`` by the GPU-request test."""

import os
import sys

from llem_nb.testing.nvml import FakeNvml
from llem_nb.testing.nvml_device import FakeGpu

_VISIBLE = [u for u in os.environ.get("NVIDIA_VISIBLE_DEVICES", "").split(",") if u]
sys.modules[__name__] = FakeNvml(  # type: ignore[assignment]
    [FakeGpu(uuid=uuid, power_w=150.0) for uuid in _VISIBLE],
    init_error=None if _VISIBLE else 12,
)
