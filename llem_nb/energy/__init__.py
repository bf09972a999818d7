"""Layer 2, energy: the one door to the hardware, and meters behind ``EnergyMeter``.

Owns the device layer (``device``: the ``Nvml`` door over pynvml or the simulator, typed
``GpuDevice`` reads, one translator from NVML errors to ``NvmlError``), the NVML, RAPL,
estimate and null meters, the factory that picks one, the background poller,
energy-counter tracks, power-curve integrals and the injectable clock. Nothing outside
``energy/`` (and ``testing/``, the simulator) imports pynvml. Imports config only (the
energy settings).
"""
