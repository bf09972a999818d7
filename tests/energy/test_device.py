"""The NVML door: typed reads off the simulator, and every NVML error translated once."""

from __future__ import annotations

import pickle

import pytest

from llem_nb.energy.device import Nvml, as_nvml, maybe_nvml
from llem_nb.errors import MeterError, NvmlError, NvmlNotSupported, NvmlUnavailable
from llem_nb.testing import FakeGpu, FakeNvml, SimClock
from llem_nb.testing.nvml import NVMLError_GpuIsLost, NVMLError_NotSupported


def test_typed_reads_through_the_door() -> None:
    clock = SimClock()
    gpu = FakeGpu(name="NVIDIA A10", uuid="GPU-abc", power_w=150.0, temperature_c=55)
    nvml = Nvml(FakeNvml([gpu], clock=clock))
    with nvml.session():
        assert nvml.device_count() == 1
        assert nvml.driver_version() == "550.54.15"
        assert nvml.cuda_driver_version() == 12040
        (device,) = nvml.devices()
        assert (device.index, device.name(), device.uuid()) == (0, "NVIDIA A10", "GPU-abc")
        assert device.temperature_c() == 55.0
        assert device.instant_power_mw() == 150_000.0
        clock.advance(2.0)
        assert device.energy_mj() == 300_000
        assert device.power_limit_w() == 700.0
        assert device.memory_mib() == (1024.0, 80 * 1024.0)
        assert device.mig_enabled() is False
    assert nvml.module.calls["nvmlInit"] == nvml.module.calls["nvmlShutdown"] == 1


def test_errors_leave_the_door_as_ours() -> None:
    nvml = Nvml(FakeNvml([FakeGpu(counter_supported=False, fail_after_s=None)]))
    with nvml.session():
        device = nvml.device(0)
        with pytest.raises(NvmlNotSupported):
            device.energy_mj()
        with pytest.raises(NvmlError) as lost:
            nvml.call("nvmlDeviceGetHandleByIndex", 7)
        assert lost.value.code == 2 and "nvmlDeviceGetHandleByIndex" in lost.value.message
        assert device.try_call("nvmlDeviceGetNoSuchThing") is None
    assert isinstance(nvml.translate(NVMLError_NotSupported()), NvmlNotSupported)
    gone = nvml.translate(NVMLError_GpuIsLost(), "nvmlDeviceGetPowerUsage")
    assert type(gone) is NvmlError and gone.code == 15
    assert pickle.loads(pickle.dumps(gone)).code == 15


def test_no_driver_is_unavailable_with_a_fix() -> None:
    nvml = Nvml(FakeNvml(init_error=12))
    with pytest.raises(NvmlUnavailable) as caught:
        nvml.init()
    assert caught.value.message == "NVML library not found (no NVIDIA driver)"
    assert "NVIDIA driver" in caught.value.fix and isinstance(caught.value, MeterError)
    assert nvml.available() == (False, "NVML library not found (no NVIDIA driver)")
    assert maybe_nvml(nvml) is None


def test_a_module_is_wrapped_and_a_door_passes_through() -> None:
    fake = FakeNvml()
    door = as_nvml(fake)
    assert isinstance(door, Nvml) and door.module is fake
    assert as_nvml(door) is door
    assert maybe_nvml(fake) is not None
