"""pynvml's error classes, simulated: ``NVMLError(code)`` builds the subclass for that code,
each carries ``.value`` and prints pynvml's text, so code under test catches them the
same way it catches the real ones."""

from __future__ import annotations

from typing import ClassVar

NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_LIBRARY_NOT_FOUND = 12
_ERROR_TEXT: dict[int, str] = {}


class NVMLError(Exception):
    """Like ``pynvml.NVMLError``: carries ``.value``; ``NVMLError(code)`` builds the subclass."""

    code: ClassVar[int | None] = None
    _by_code: ClassVar[dict[int, type[NVMLError]]] = {}
    value: int

    def __new__(cls, value: int | None = None) -> NVMLError:
        if cls is NVMLError and value is not None:
            cls = NVMLError._by_code.get(value, NVMLError)
        code = value if value is not None else cls.code
        obj = Exception.__new__(cls)
        obj.value = code if code is not None else -1
        return obj

    def __init__(self, value: int | None = None) -> None:
        super().__init__(self.value)

    def __init_subclass__(cls) -> None:
        if cls.code is not None:
            NVMLError._by_code[cls.code] = cls

    def __str__(self) -> str:
        return _ERROR_TEXT.get(self.value, f"NVML error {self.value}")


def _error_class(name: str, code: int, text: str) -> type[NVMLError]:
    _ERROR_TEXT[code] = text
    return type(name, (NVMLError,), {"code": code, "__doc__": f"pynvml's {name}: {text}."})


NVMLError_Uninitialized = _error_class("NVMLError_Uninitialized", 1, "Uninitialized")
NVMLError_InvalidArgument = _error_class("NVMLError_InvalidArgument", 2, "Invalid Argument")
NVMLError_NotSupported = _error_class("NVMLError_NotSupported", 3, "Not Supported")
NVMLError_NotFound = _error_class("NVMLError_NotFound", 6, "Not Found")
NVMLError_DriverNotLoaded = _error_class("NVMLError_DriverNotLoaded", 9, "Driver Not Loaded")
NVMLError_LibraryNotFound = _error_class(
    "NVMLError_LibraryNotFound", 12, "NVML Shared Library Not Found"
)
NVMLError_GpuIsLost = _error_class("NVMLError_GpuIsLost", 15, "GPU is lost")
NVMLError_Timeout = _error_class("NVMLError_Timeout", 10, "Timeout")
NVMLError_Unknown = _error_class("NVMLError_Unknown", 999, "Unknown Error")
