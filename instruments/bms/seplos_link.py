"""``SeplosLink``: the BMS over its Seplos V2 serial protocol, through pyserial.

The port is opened with ``serial.serial_for_url``, so ``/dev/ttyUSB0``, a pty path and
``socket://host:port`` all work. Every exchange is checked (LENGTH checksum, CHKSUM,
address, INFO layout); a corrupt or missing answer is retried a bounded number of times and
then raises ``BmsLinkError`` naming the command and every problem seen. A corrupt frame is
never parsed into values. A non-zero RTN raises ``BmsRejected`` with its meaning (except
0x02/0x03: the BMS saw our request corrupted on the line, which is worth a retry).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import serial

from instruments.bms import seplos_codec as codec
from instruments.bms.types import DeviceInfo, HistoryRecord, ParameterBlock, Status, Telemetry
from instruments.bmslink import BmsLink, ControlAction, ControlItem
from instruments.errors import BmsLinkError, BmsRejected

T = TypeVar("T")

#: RTNs that mean "your request arrived damaged": retried like a corrupt answer.
RETRY_RTN = {0x02, 0x03}
RTN_NO_DATA = 0x07


class LinkTimeout(Exception):
    """No complete frame within the response timeout."""


class SeplosLink(BmsLink):
    """One BMS at ``address`` on a serial line (or a socket standing in for one).

    ``timeout_s`` is the protocol's 500 ms response timeout; ``retries`` extra attempts are
    made after a missing or corrupt answer (default 3, so at most 4 requests).
    """

    def __init__(
        self,
        port: str,
        *,
        baud: int = 19200,
        address: int = 0,
        spec: Any = None,
        timeout_s: float = 0.5,
        retries: int = 3,
        serial_port: Any = None,
    ) -> None:
        if spec is None:
            from harness.spec import load_spec

            spec = load_spec()
        self.spec = spec
        self.address = address
        self.timeout_s = timeout_s
        self.retries = retries
        self.port_name = port
        self._last_raw_block: codec.RawBlock | None = None
        try:
            self.serial = serial_port or serial.serial_for_url(
                port, baudrate=baud, bytesize=8, parity="N", stopbits=1, timeout=timeout_s
            )
        except (serial.SerialException, ValueError, OSError) as exc:
            raise BmsLinkError(f"cannot open BMS port {port}: {exc}") from exc

    # -- exchange ----------------------------------------------------------------------

    def _read_exact(self, n: int, deadline: float) -> bytes:
        data = bytearray()
        while len(data) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LinkTimeout(f"{len(data)} of {n} characters")
            self.serial.timeout = remaining
            data += self.serial.read(n - len(data))
        return bytes(data)

    def _read_frame(self) -> bytes:
        deadline = time.monotonic() + self.timeout_s
        skipped = 0
        while self._read_exact(1, deadline) != codec.SOI:
            skipped += 1  # line noise or the tail of a late answer: resynchronise on '~'
        header = self._read_exact(12, deadline)
        try:
            lenid = codec.lenid_of_header(header)
        except codec.FrameError:
            return codec.SOI + header  # decode_frame names the problem
        return codec.SOI + header + self._read_exact(lenid + 5, deadline)

    def exchange(self, name: str, cid2: int, info: bytes, parse: Callable[[codec.Frame], T]) -> T:
        """Send one request; return ``parse`` of the first valid answer.

        ``parse`` raising ``FrameError``/``ValueError`` marks the answer corrupt (retried).
        """
        request = codec.encode_frame(codec.Frame(adr=self.address, cid2=cid2, info=info))
        problems: list[str] = []
        for _attempt in range(1 + self.retries):
            try:
                self.serial.reset_input_buffer()
                self.serial.write(request)
                self.serial.flush()
                raw = self._read_frame()
            except LinkTimeout as exc:
                problems.append(f"no complete answer within {self.timeout_s:g} s ({exc})")
                continue
            except (serial.SerialException, OSError) as exc:
                raise BmsLinkError(f"{name}: port {self.port_name} failed: {exc}") from exc
            try:
                frame = codec.decode_frame(raw)
            except codec.FrameError as exc:
                problems.append(f"corrupt answer: {exc}")
                continue
            if frame.adr != self.address:
                problems.append(f"answer from address {frame.adr}, expected {self.address}")
                continue
            if frame.cid1 != codec.CID1_LIFEPO4:
                problems.append(f"answer with CID1 0x{frame.cid1:02X}")
                continue
            if frame.rtn in RETRY_RTN:
                problems.append(
                    f"BMS answered RTN 0x{frame.rtn:02X} ({codec.describe_rtn(frame.rtn)})"
                )
                continue
            if frame.rtn != 0:
                raise BmsRejected(name, frame.rtn, codec.describe_rtn(frame.rtn))
            try:
                return parse(frame)
            except ValueError as exc:  # FrameError is a ValueError
                problems.append(f"malformed INFO: {exc}")
                continue
        attempts = 1 + self.retries
        raise BmsLinkError(
            f"{name} (CID2 0x{cid2:02X}) to address {self.address} on {self.port_name}: "
            f"no valid answer in {attempts} attempts: {'; '.join(problems)}"
        )

    def _group(self) -> bytes:
        return bytes([self.address])

    # -- BmsLink -----------------------------------------------------------------------

    def telemetry(self) -> Telemetry:
        return self.exchange(
            "telemetry",
            codec.CID2_TELEMETRY,
            self._group(),
            lambda f: codec.decode_telemetry(f.info)[0],
        )

    def status(self) -> Status:
        flags = codec.as_flag_list(self.spec.flags)
        return self.exchange(
            "status", codec.CID2_STATUS, self._group(), lambda f: codec.decode_status(f.info, flags)
        )

    def protocol_version(self) -> str:
        return self.exchange(
            "protocol version",
            codec.CID2_PROTOCOL_VERSION,
            b"",
            lambda f: f"{f.ver >> 4}.{f.ver & 0xF}",
        )

    def device_info(self) -> DeviceInfo:
        return self.exchange(
            "device info", codec.CID2_DEVICE_INFO, b"", lambda f: codec.decode_device_info(f.info)
        )

    def read_parameters(self) -> ParameterBlock:
        raw = self.exchange(
            "read parameters",
            codec.CID2_READ_PARAMETERS,
            self._group(),
            lambda f: codec.decode_block(f.info),
        )
        self._last_raw_block = raw
        return codec.block_values(raw, self.spec.parameters, self.spec.switches)

    def write_block(self, block: ParameterBlock) -> None:
        raw = codec.block_raw(block, self.spec.parameters, self.spec.switches, self._last_raw_block)
        self.exchange(
            "write parameters", codec.CID2_WRITE_PARAMETERS, codec.encode_block(raw), lambda f: None
        )

    def resolution(self, number: int) -> float:
        return float(self.spec.param(number).encoding.scale)

    def set_remaining_capacity(self, ah: float) -> None:
        info = codec.remaining_capacity_info(self.address, ah)
        self.exchange("set remaining capacity", codec.CID2_SET_PARAMETER, info, lambda f: None)

    def control(self, item: ControlItem | int, action: ControlAction | int) -> None:
        info = codec.control_info(self.address, int(item), int(action))
        name = f"control {ControlItem(item).name.lower()} {ControlAction(action).name.lower()}"
        self.exchange(name, codec.CID2_CONTROL, info, lambda f: None)

    def history_record(self, index: int = 0) -> HistoryRecord | None:
        try:
            raw = self.exchange(
                "history record", codec.CID2_HISTORY, codec.history_info(index), lambda f: f.info
            )
        except BmsRejected as exc:
            if exc.code == RTN_NO_DATA:
                return None
            raise
        return HistoryRecord(index=index, raw=raw)

    def close(self) -> None:
        try:
            self.serial.close()
        except Exception:  # noqa: BLE001 - closing must not mask the error that led here
            pass
