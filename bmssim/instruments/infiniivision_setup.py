"""The InfiniiVision simulator's settings: ranges and limits from the programming guide, the
argument parsers (sources, edges, strings, blocks), and the channel and scope setup that
``:SYSTem:SETup`` saves and restores."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields

from bmssim.scpi import Args, ScpiError, data_type_error, illegal_parameter

SIGNALS = {1: "current", 2: "discharge_fet", 3: "charge_fet"}

ANALOG_CHANNELS = 4

NO_MEASUREMENT = 9.9e37

TIMEBASE_MIN_S = 50e-9

TIMEBASE_MAX_S = 500.0

POINTS_MIN = 100

POINTS_MAX = 8_000_000

POINTS_RETURNED_MAX = 1_000_000

DEFAULT_POINTS = 1000

_FORMAT_CODES = {"BYTE": 0, "WORD": 1, "ASC": 4}

_SOURCE_RE = re.compile(r"^CHAN(?:NEL)?(\d+)$", re.IGNORECASE)

_EDGE_RE = re.compile(r"^([+-]?)(\d+)$")

DIVISIONS_X = 10

DIVISIONS_Y = 8

SCALE_MIN_V = 1e-3  # per division, 1:1 probe

SCALE_MAX_V = 5.0

OFFSET_SMALL_V = 2.0  # offset range below 200 mV/div (1:1)

OFFSET_LARGE_V = 40.0

PROBE_MIN = 0.1

PROBE_MAX = 10000.0

LABEL_MAX = 10

REFERENCE_FRACTION = {"LEFT": 0.0, "CENT": 0.5, "RIGH": 1.0}

ACQUIRE_TYPE_CODES = {"NORM": 0, "PEAK": 1, "AVER": 2, "HRES": 3}

TRIGGER_MODES = (
    "EDGE", "GLITch", "PATTern", "TV", "DELay", "EBURst", "OR", "RUNT", "SHOLd",
    "TRANsition", "SBUS1", "SBUS2", "SBUS3", "SBUS4",
)  # fmt: skip

TRIGGER_OTHER_SOURCES = ("EXTernal", "LINE", "WGEN")

SETUP_VERSION = "bms-hil DSOX3024T setup 1"


def parse_source(text: str) -> int:
    """``CHAN1``/``CHANnel1`` -> 1; anything else is -224."""
    m = _SOURCE_RE.match(text.strip())
    if not m or not 1 <= int(m.group(1)) <= ANALOG_CHANNELS:
        raise illegal_parameter(text)
    return int(m.group(1))


def parse_edge(text: str) -> int:
    """``+1`` (first rising), ``-2`` (second falling), ``1`` (rising): signed occurrence."""
    m = _EDGE_RE.match(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 1000:
        raise illegal_parameter(text)
    n = int(m.group(2))
    return -n if m.group(1) == "-" else n


def format_edge(edge: int) -> str:
    return f"{edge:+d}"


def parse_string(text: str) -> str:
    """SCPI string program data: ``"abc"`` or ``'abc'``, a doubled quote stands for one."""
    text = text.strip()
    if len(text) < 2 or text[0] not in "\"'" or text[-1] != text[0]:
        raise data_type_error(f"string expected: {text}")
    quote = text[0]
    return text[1:-1].replace(quote * 2, quote)


def parse_block(text: str) -> bytes:
    """The data of a definite-length block ``#<n><length><data>``; -161 when malformed."""
    raw = text.strip().encode("latin-1")
    if len(raw) < 2 or raw[:1] != b"#" or not raw[1:2].isdigit() or raw[1:2] == b"0":
        raise ScpiError(-161, "Invalid block data", "definite-length block expected")
    digits = int(raw[1:2])
    count = raw[2 : 2 + digits]
    if len(count) != digits or not count.isdigit() or len(raw) != 2 + digits + int(count):
        raise ScpiError(-161, "Invalid block data", "block length does not match")
    return raw[2 + digits :]


def nice_scale(span: float) -> float:
    """The smallest 1-2-5 step at or above ``span``."""
    if span <= 0:
        return 1.0
    exponent = math.floor(math.log10(span))
    for mantissa in (1.0, 2.0, 5.0, 10.0):
        step = mantissa * 10.0**exponent
        if step >= span * (1 - 1e-9):
            return step
    return 10.0 ** (exponent + 1)


@dataclass
class ChannelSetup:
    """One analog channel's vertical setup (values in the channel's units, probe-referred)."""

    scale: float = 5.0  # per division (8 divisions full scale): RANGe 40 with a 10:1 probe
    offset: float = 0.0
    probe: float = 10.0
    coupling: str = "DC"
    impedance: str = "ONEM"
    display: bool = False
    bwlimit: bool = False
    invert: bool = False
    vernier: bool = False
    label: str = ""
    units: str = "VOLT"
    skew_s: float = 0.0


def _default_channels() -> list[ChannelSetup]:
    channels = [ChannelSetup(label=str(n)) for n in range(1, ANALOG_CHANNELS + 1)]
    channels[0].display = True  # *RST: channel 1 on, the others off
    channels[0].units = "AMP"  # the bench's current probe on channel 1
    return channels


def _default_levels() -> dict[str, float]:
    return {**{f"CHAN{n}": 0.0 for n in range(1, ANALOG_CHANNELS + 1)}, "EXT": 0.0}


@dataclass
class ScopeSetup:
    """Everything ``:SYSTem:SETup?`` saves besides ``ScopeState`` (reset: ``ScopeSetup()``)."""

    timebase_mode: str = "MAIN"
    timebase_reference: str = "LEFT"
    timebase_position_s: float = 0.0
    timebase_vernier: bool = False
    acquire_type: str = "NORM"
    acquire_mode: str = "RTIM"
    acquire_count: int = 8
    trigger_mode: str = "EDGE"
    trigger_sweep: str = "AUTO"
    trigger_source: str = "CHAN1"
    trigger_slope: str = "POS"
    trigger_coupling: str = "DC"
    trigger_holdoff_s: float = 40e-9
    trigger_nreject: bool = False
    trigger_hfreject: bool = False
    trigger_levels: dict[str, float] = field(default_factory=_default_levels)
    channels: list[ChannelSetup] = field(default_factory=_default_channels)


class ScopeSetupStore:
    """``:SYSTem:SETup`` of :class:`KeysightInfiniiVision`: the setup saved as a block and
    restored from one, refused whole when any part of it is not a setup this scope wrote."""

    def setup_data(self) -> bytes:
        """The setup ``:SYSTem:SETup?`` returns (inside its block): a JSON text."""
        data = {
            "version": SETUP_VERSION,
            "setup": asdict(self.setup),
            "state": {name: getattr(self.state, name) for name in self._STATE_FIELDS},
            "waveform": {"points": self.waveform_points, "msb_first": self.byte_order_msb},
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("ascii")

    def _restore_setup(self, args: Args) -> None:
        raw = parse_block(args.raw(0))
        try:
            data = json.loads(raw)
            if data["version"] != SETUP_VERSION:
                raise ValueError("not a setup of this scope")
            setup = self._decode_setup(data["setup"])
            state = data["state"]
            if set(state) != set(self._STATE_FIELDS):
                raise ValueError("state fields")
            range_s = float(state["timebase_range_s"])
            if not TIMEBASE_MIN_S <= range_s <= TIMEBASE_MAX_S:
                raise ValueError("timebase range")
            first, second = (int(e) for e in state["delay_edges"])
            source = int(state["waveform_source"])
            if not 1 <= source <= ANALOG_CHANNELS or not first or not second:
                raise ValueError("waveform source or delay edges")
            fmt, points_mode = str(state["waveform_format"]), str(state["waveform_points_mode"])
            if fmt not in _FORMAT_CODES or points_mode not in ("NORM", "MAX", "RAW"):
                raise ValueError("waveform format")
            points = int(data["waveform"]["points"])
            if not POINTS_MIN <= points <= POINTS_MAX:
                raise ValueError("waveform points")
            msb_first = bool(data["waveform"]["msb_first"])
        except (ValueError, KeyError, TypeError) as exc:
            raise illegal_parameter(f"setup block: {exc}") from None
        # Valid as a whole: apply (nothing above changed any state).
        self.setup = setup
        s = self.state
        s.timebase_range_s, s.delay_edges = range_s, (first, second)
        s.waveform_source, s.waveform_format, s.waveform_points_mode = source, fmt, points_mode
        self.waveform_points, self.byte_order_msb = points, msb_first

    @staticmethod
    def _decode_setup(raw: object) -> ScopeSetup:
        """A ScopeSetup from its asdict() form; ValueError/KeyError/TypeError if it is not."""
        if not isinstance(raw, dict):
            raise TypeError("setup is not an object")
        default = ScopeSetup()
        values: dict[str, object] = {}
        for f in fields(ScopeSetup):
            if f.name == "channels":
                chans = raw[f.name]
                if not isinstance(chans, list) or len(chans) != ANALOG_CHANNELS:
                    raise ValueError("channels")
                values[f.name] = [
                    ChannelSetup(**{c.name: type(getattr(ChannelSetup(), c.name))(ch[c.name])
                                    for c in fields(ChannelSetup)})
                    for ch in chans
                ]  # fmt: skip
            elif f.name == "trigger_levels":
                levels = {str(k): float(v) for k, v in dict(raw[f.name]).items()}
                if set(levels) != set(default.trigger_levels):
                    raise ValueError("trigger levels")
                values[f.name] = levels
            else:
                values[f.name] = type(getattr(default, f.name))(raw[f.name])
        setup = ScopeSetup(**values)  # type: ignore[arg-type]
        if setup.timebase_reference not in REFERENCE_FRACTION:
            raise ValueError("timebase reference")
        if setup.acquire_type not in ACQUIRE_TYPE_CODES:
            raise ValueError("acquisition type")
        return setup
