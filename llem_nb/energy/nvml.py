"""NvmlMeter: GPU energy from NVML's total-energy counter, with power polling alongside.

Per GPU, the primary number is the difference of ``nvmlDeviceGetTotalEnergyConsumption``
(mJ, Volta and newer) across the window. A daemon thread samples power every
``poll_interval_s``; the trapezoid over those samples (with one at ``start()`` and one
at ``stop()``) is the cross-check, and the energy where the counter is missing or went
backwards. NVML errors become ``MeterError`` or per-device warnings here, in one place.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, NamedTuple

from llem_nb.energy.base import DeviceReading, EnergyMeter, EnergyReading
from llem_nb.errors import MeterError


class PowerSample(NamedTuple):
    """One poll: ``time.perf_counter()`` and watts per metered GPU (None: read failed)."""

    t: float
    watts: tuple[float | None, ...]


def load_pynvml() -> Any:
    """Import the real ``pynvml`` module (package ``nvidia-ml-py``) on first use."""
    try:
        import pynvml
    except ImportError as exc:
        fix = "pip install nvidia-ml-py, or set energy.source='auto'"
        raise MeterError("nvidia-ml-py (pynvml) is not installed", fix=fix) from exc
    return pynvml


def as_text(value: str | bytes) -> str:
    """NVML strings are bytes in old pynvml, str in new."""
    return value.decode() if isinstance(value, bytes) else str(value)


def nvml_init_reason(nvml: Any, exc: Exception) -> str:
    """Why nvmlInit failed, in words a user can act on."""
    if isinstance(exc, nvml.NVMLError_LibraryNotFound):
        return "NVML library not found (no NVIDIA driver)"
    if getattr(exc, "value", None) == 9:
        return "NVIDIA driver not loaded"
    return f"NVML failed to initialise: {exc}"


def visible_nvml_indices(nvml: Any, cuda_visible_devices: str | None) -> list[int]:
    """NVML indices of the GPUs a ``CUDA_VISIBLE_DEVICES`` value exposes, in CUDA order.

    Entries are indices (assumed in PCI bus order, i.e. ``CUDA_DEVICE_ORDER=PCI_BUS_ID``),
    GPU UUIDs or unique UUID prefixes (``GPU-`` optional), or ``MIG-`` UUIDs, which map to
    their parent GPU. As in CUDA, a negative index ends the list (``-1`` hides all GPUs).
    None means every GPU.
    """
    nvml.nvmlInit()
    try:
        count = nvml.nvmlDeviceGetCount()
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        uuids = [as_text(nvml.nvmlDeviceGetUUID(h)) for h in handles]
        if cuda_visible_devices is None:
            return list(range(count))
        result: list[int] = []
        for entry in filter(None, (e.strip() for e in cuda_visible_devices.split(","))):
            if entry.startswith("-"):
                break
            index = _entry_index(nvml, entry, uuids)
            if index not in result:
                result.append(index)
        return result
    finally:
        nvml.nvmlShutdown()


def _bare_uuid(uuid: str) -> str:
    uuid = uuid.lower()
    return uuid[4:] if uuid.startswith("gpu-") else uuid


def _entry_index(nvml: Any, entry: str, uuids: list[str]) -> int:
    """One ``CUDA_VISIBLE_DEVICES`` entry as an NVML index; MeterError naming it if none fits."""
    hits: list[int] = []
    if entry.isdigit():
        hits = [int(entry)] if int(entry) < len(uuids) else []
    elif entry.upper().startswith("MIG-"):
        try:
            mig = nvml.nvmlDeviceGetHandleByUUID(entry)
            parent = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig)
            hits = [uuids.index(as_text(nvml.nvmlDeviceGetUUID(parent)))]
        except (nvml.NVMLError, ValueError):
            hits = []
    else:
        hits = [i for i, u in enumerate(uuids) if _bare_uuid(u).startswith(_bare_uuid(entry))]
    if len(hits) != 1:
        raise MeterError(
            f"CUDA_VISIBLE_DEVICES entry {entry!r} matches {len(hits) or 'no'} GPUs; "
            f"NVML sees: {', '.join(uuids) or 'none'}",
            fix="use an index, a unique UUID prefix or a MIG UUID from `nvidia-smi -L`",
        )
    return hits[0]


def _trapezoid(samples: list[PowerSample], k: int) -> tuple[float | None, int]:
    """Joules by the trapezoid rule over GPU ``k``'s samples; None if any sample is missing."""
    points = [(s.t, w) for s in samples if (w := s.watts[k]) is not None]
    if len(points) < 2 or len(points) != len(samples):
        return None, len(points)
    joules = sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in itertools.pairwise(points))
    return joules, len(points)


class NvmlMeter(EnergyMeter):
    """Energy of the given NVML GPU indices (None = all); labels ``gpu{index}``."""

    source = "nvml"

    def __init__(
        self, gpu_indices: list[int] | None, *, poll_interval_s: float = 0.05, nvml: Any = None
    ) -> None:
        super().__init__()
        self.gpu_indices = list(gpu_indices) if gpu_indices is not None else None
        self.poll_interval_s = poll_interval_s
        self.samples: list[PowerSample] = []
        self.driver_version = ""
        self._nvml = nvml
        self._open = False
        self._handles: list[Any] = []
        self._info: list[tuple[int, str, str]] = []
        self._mig: list[bool] = []
        self._idle: dict[str, float] = {}
        self._counter0: list[float | None] = []
        self._errors: dict[int, str] = {}
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def _ensure_open(self) -> None:
        if self._open:
            return
        nv = self._nvml = self._nvml if self._nvml is not None else load_pynvml()
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:
            fix = "install the NVIDIA driver, or set energy.source='auto'"
            raise MeterError(nvml_init_reason(nv, exc), fix=fix) from exc
        self._open = True
        try:
            count = nv.nvmlDeviceGetCount()
            indices = self.gpu_indices if self.gpu_indices is not None else list(range(count))
            if any(not 0 <= i < count for i in indices):
                raise MeterError(
                    f"NVML GPU indices {indices} do not all exist ({count} GPU(s) here)",
                    fix="pass NVML indices, e.g. from visible_nvml_indices() or `nvidia-smi -L`",
                )
            self.driver_version = as_text(nv.nvmlSystemGetDriverVersion())
            self._handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in indices]
            self._info = [
                (i, as_text(nv.nvmlDeviceGetName(h)), as_text(nv.nvmlDeviceGetUUID(h)))
                for i, h in zip(indices, self._handles, strict=True)
            ]
            self._mig = [self._mig_enabled(h) for h in self._handles]
        except (MeterError, nv.NVMLError) as exc:
            self.close()
            if isinstance(exc, MeterError):
                raise
            raise MeterError(f"NVML could not open the GPUs: {exc}") from exc

    def _read(self, call: str) -> list[float | None]:
        """NVML ``call`` per GPU; None where it fails, keeping each GPU's first real error."""
        values: list[float | None] = []
        for k, h in enumerate(self._handles):
            try:
                values.append(float(getattr(self._nvml, call)(h)))
            except self._nvml.NVMLError as exc:
                if not isinstance(exc, self._nvml.NVMLError_NotSupported):
                    self._errors.setdefault(k, str(exc))
                values.append(None)
        return values

    def _counters(self) -> list[float | None]:
        return self._read("nvmlDeviceGetTotalEnergyConsumption")

    def _sample(self) -> PowerSample:
        t = time.perf_counter()
        mw = self._read("nvmlDeviceGetPowerUsage")
        return PowerSample(t, tuple(None if w is None else w / 1000.0 for w in mw))

    def _poll(self, samples: list[PowerSample]) -> None:
        next_t = time.perf_counter() + self.poll_interval_s
        while not self._halt.wait(max(0.0, next_t - time.perf_counter())):
            samples.append(self._sample())
            next_t = max(next_t + self.poll_interval_s, time.perf_counter())

    def _stop_polling(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _begin(self) -> tuple[list[float | None], list[PowerSample]]:
        """A sample, then the counters (slow, ~4 ms) nearest the window edge, then polling."""
        self._errors = {}
        samples = [self._sample()]
        counters = self._counters()
        self._halt.clear()
        self._thread = threading.Thread(
            target=self._poll, args=(samples,), name="llem-nvml-poll", daemon=True
        )
        self._thread.start()
        return counters, samples

    def _end(self, samples: list[PowerSample]) -> list[float | None]:
        self._stop_polling()
        counters = self._counters()
        samples.append(self._sample())
        return counters

    def _device(
        self, k: int, c0: float | None, c1: float | None, samples: list[PowerSample]
    ) -> tuple[DeviceReading, tuple[str, str] | None]:
        """GPU ``k``'s reading, and (flag, warning) when something is off."""
        index, name, uuid = self._info[k]
        label = f"gpu{index}"
        power_j, n = _trapezoid(samples, k)
        energy_j, method, problem = power_j, "power", None
        if k in self._errors:
            energy_j = power_j = None
            problem = ("gpu_read_error", f"{label} ({name}) could not be read: {self._errors[k]}")
        elif c0 is not None and c1 is not None and c1 >= c0:
            energy_j, method = (c1 - c0) / 1000.0, "counter"
        elif c0 is not None and c1 is not None:
            problem = (
                "counter_reset",
                f"{label} energy counter went backwards; used power polling",
            )
        elif power_j is None:
            problem = ("gpu_read_error", f"{label} ({name}) reports neither energy nor power")
        reading = DeviceReading(label, energy_j, method, index, uuid, name, n, power_j)
        reading.idle_power_w = self._idle.get(label)
        return reading, problem

    def _start(self) -> None:
        self._ensure_open()
        self._counter0, self.samples = self._begin()

    def _stop(self, window_s: float) -> EnergyReading:
        counter1 = self._end(self.samples)
        reading = EnergyReading(source=self.source, window_s=window_s)
        for k, c1 in enumerate(counter1):
            device, problem = self._device(k, self._counter0[k], c1, self.samples)
            reading.devices.append(device)
            if self._mig[k]:
                problem = (
                    "mig_whole_gpu",
                    f"{device.label} is in MIG mode: NVML energy covers "
                    "the whole GPU, including other MIG instances",
                )
            if problem is not None:
                reading.flags.append(problem[0])
                reading.warnings.append(problem[1])
        reading.flags = list(dict.fromkeys(reading.flags))
        return reading

    def _mig_enabled(self, handle: Any) -> bool:
        try:
            return bool(self._nvml.nvmlDeviceGetMigMode(handle)[0])
        except (AttributeError, self._nvml.NVMLError):
            return False

    def idle_power_w(self, seconds: float) -> dict[str, float]:
        """Mean watts per GPU over ``seconds`` (counter, else polling); later readings carry it."""
        if seconds <= 0:
            return {}
        if self._t0 is not None:
            raise RuntimeError("idle_power_w() needs a closed window; call stop() first")
        self._ensure_open()
        c0, samples = self._begin()
        time.sleep(seconds)
        c1 = self._end(samples)
        elapsed = samples[-1].t - samples[0].t
        devices = [self._device(k, c0[k], c1[k], samples)[0] for k in range(len(c1))]
        self._idle = {
            d.label: d.energy_j / elapsed for d in devices if d.energy_j is not None and elapsed > 0
        }
        return dict(self._idle)

    def describe(self) -> str:
        names = sorted({name for _, name, _ in self._info})
        return f"nvml ({', '.join(names)}; driver {self.driver_version})" if names else "nvml"

    def close(self) -> None:
        self._stop_polling()
        self._t0 = None
        if self._open:
            self._open = False
            self._nvml.nvmlShutdown()
