"""SCPI errors and status on the simulator's side: the standard error codes (IEEE 488.2 and
SCPI-99) with their messages, the error queue, and the status bytes (ESR, STB) they set."""

from __future__ import annotations

from collections import deque


class ScpiError(Exception):
    """A SCPI error: the command is not executed and (code, message) goes to the queue."""

    def __init__(self, code: int, message: str, detail: str = "") -> None:
        super().__init__(f"{code},{message}" + (f" ({detail})" if detail else ""))
        self.code = code
        self.message = message
        self.detail = detail


def undefined_header(detail: str = "") -> ScpiError:
    return ScpiError(-113, "Undefined header", detail)


def data_out_of_range(detail: str = "") -> ScpiError:
    return ScpiError(-222, "Data out of range", detail)


def illegal_parameter(detail: str = "") -> ScpiError:
    return ScpiError(-224, "Illegal parameter value", detail)


def data_type_error(detail: str = "") -> ScpiError:
    return ScpiError(-104, "Data type error", detail)


def missing_parameter(detail: str = "") -> ScpiError:
    return ScpiError(-109, "Missing parameter", detail)


def parameter_not_allowed(detail: str = "") -> ScpiError:
    return ScpiError(-108, "Parameter not allowed", detail)


def invalid_suffix(detail: str = "") -> ScpiError:
    return ScpiError(-131, "Invalid suffix", detail)


def settings_conflict(detail: str = "") -> ScpiError:
    return ScpiError(-221, "Settings conflict", detail)


def trigger_ignored(detail: str = "") -> ScpiError:
    return ScpiError(-211, "Trigger ignored", detail)


class ErrorQueue:
    """The SCPI error/event queue: FIFO, bounded; overflow replaces the newest with -350."""

    def __init__(self, capacity: int = 20) -> None:
        self.capacity = capacity
        self._items: deque[tuple[int, str]] = deque()

    def push(self, code: int, message: str) -> None:
        if len(self._items) >= self.capacity:
            self._items[-1] = (-350, "Queue overflow")
            return
        self._items.append((code, message))

    def pop(self) -> tuple[int, str]:
        if not self._items:
            return (0, "No error")
        return self._items.popleft()

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    @staticmethod
    def format(item: tuple[int, str]) -> str:
        code, message = item
        return f'{code},"{message}"'


# IEEE 488.2 §11.5.1.1 Standard Event Status Register bits.
ESR_OPC = 0x01  # operation complete

ESR_RQC = 0x02  # request control (never: no instrument here is a controller)

ESR_QYE = 0x04  # query error

ESR_DDE = 0x08  # device-dependent error

ESR_EXE = 0x10  # execution error

ESR_CME = 0x20  # command error

ESR_URQ = 0x40  # user request (never: no front panel)

ESR_PON = 0x80  # power on

# IEEE 488.2 §11.2.2 status byte, with the bits SCPI-1999 (Vol. 1 §9) assigns.
STB_EAV = 0x04  # error/event queue not empty

STB_QUES = 0x08  # questionable status summary

STB_MAV = 0x10  # message available

STB_ESB = 0x20  # event status bit: ESR & ESE

STB_MSS = 0x40  # master summary status: STB & SRE

STB_OPER = 0x80  # operation status summary


def esr_bit_for(code: int) -> int:
    """The ESR bit an error of this SCPI code sets (its class); 0 for ``0,"No error"``."""
    if -199 <= code <= -100:
        return ESR_CME
    if -299 <= code <= -200:
        return ESR_EXE
    if -399 <= code <= -300 or code > 0:  # positive codes are device-dependent
        return ESR_DDE
    if -499 <= code <= -400:
        return ESR_QYE
    return 0
