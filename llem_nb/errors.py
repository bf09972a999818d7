"""The error and warning hierarchies: one root each, messages that say what to do, safe to pickle.

Every error carries ``fix`` (what the user should do next). Errors cross process
boundaries (subprocess, container, Ray worker), so each keeps its message in
``args`` and everything else in ``__dict__``: the default pickle protocol then
round-trips them without custom code. Every warning llem_nb issues is a
``LlemWarning``, so ``warnings.filterwarnings("ignore", category=ll.LlemWarning)``
(or ``"error"``) reaches all of them.
"""

from __future__ import annotations


class LlemError(Exception):
    """Root of every error llem_nb raises on purpose."""

    default_fix: str = ""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix if fix is not None else self.default_fix

    def __str__(self) -> str:
        if self.fix and self.fix not in self.message:
            return f"{self.message}\n  fix: {self.fix}"
        return self.message


class LlemWarning(UserWarning):
    """Root of every warning llem_nb issues (skipped files, resume notes, engine arguments, …)."""


class ConfigError(LlemError, ValueError):
    """A study or experiment definition that cannot run as written."""

    def __init__(self, message: str, *, field: str | None = None, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.field = field


class PreflightError(LlemError):
    """The machine cannot run the study as asked; raised before anything runs."""


class BackendError(LlemError):
    """An inference backend failed to load or generate."""


class MeterError(LlemError):
    """An energy meter could not be opened or read."""


class NvmlError(MeterError):
    """NVML refused a call; ``code`` is NVML's return code (None when not known)."""

    def __init__(self, message: str, *, code: int | None = None, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.code = code


class NvmlNotSupported(NvmlError):
    """This GPU, driver or pynvml does not offer the call."""


class NvmlUnavailable(NvmlError):
    """No NVML here: pynvml not installed, no driver, or it would not initialise."""


class ResultError(LlemError):
    """A result could not be written or read."""


class RunnerError(LlemError):
    """An experiment failed inside a runner; carries the remote traceback when there is one,
    and the exchange directory kept for a post-mortem (``exchange_dir``)."""

    def __init__(
        self,
        message: str,
        *,
        fix: str | None = None,
        error_type: str | None = None,
        remote_traceback: str | None = None,
        category: str = "error",
        exchange_dir: str | None = None,
    ) -> None:
        super().__init__(message, fix=fix)
        self.error_type = error_type
        self.remote_traceback = remote_traceback
        self.category = category
        self.exchange_dir = exchange_dir

    def __str__(self) -> str:
        text = super().__str__()
        if self.remote_traceback:
            text += "\n--- traceback from the experiment process ---\n" + self.remote_traceback
        return text


class ExperimentTimeout(RunnerError):
    """An experiment ran past its ``timeout_s`` and was stopped."""

    default_fix = "raise timeout_s in the experiment config, or shrink n_prompts/max_output_tokens"
