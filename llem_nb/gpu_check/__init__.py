"""The GPU check: the real NVML path, end to end (``llem-nb gpu-check``).

On a machine with an NVIDIA GPU, in one run: what this GPU's NVML does (the energy
counter's update period, PowerUsage's averaging window, read costs; the trace is saved as
``nvml_trace.csv``), then a tiny Llama and a ~1B-parameter random-init Llama, PyTorch
backend, bf16, one GPU, batch 1/8/32, each with the GPU default 10 s minimum window and a
5 s idle baseline. Prints gross and net J/output-token, tokens/s, counter-vs-power ratio,
idle power, the prefill share, TTFT p50 next to a CUDA-event reference, and the flags; then
one config measured in this process and through the container entrypoint (as a container
runs it, no Docker needed), side by side; then a small study run without and with reuse
(study wall ÷ Σ windows, loads); and writes the results dir (result JSONs, Parquet
timeseries, ``summary.csv``). Needs torch, transformers, nvidia-ml-py, pandas, pyyaml,
pyarrow, pydantic, platformdirs and tqdm (scripts/gpu_check.sh carries the last three as
wheels); no accelerate, no network.

``--fake`` runs the same code on the CPU against a fake NVML GPU (CI, no GPU).
Exit codes: 0 all measured, 1 an experiment failed, 2 no usable GPU here.

The command itself is ``llem_nb.cli.gpu_check``; here are its parts: ``steps`` (is a GPU
here, the probe, the closing comparisons), ``probe``, ``measure``, ``models``,
``entrypoint``, ``reuse``.
"""
