"""Layer 2, energy: meters behind ``EnergyMeter`` and how they read hardware.

Owns the NVML, RAPL, estimate and null meters, the factory that picks one, the
background poller, energy-counter tracks, power-curve integrals and the injectable
clock. Imports config only (the energy settings).
"""
