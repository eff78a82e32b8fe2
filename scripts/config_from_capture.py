"""Write test_plans/configs/pack-1101-ZA11-160Ah.yaml from the captured 0x47 answer.

The frame is the one ``/work/shared/protocols/seplos-v2.md`` section 7.4 prints (the 16S
board ``1101-ZA11``, rated 160 Ah), decoded with the project's codec
(``instruments/bms/seplos_codec.py``) against the spec tables. Only the items whose decoded
value differs from the spec default are written; ``tests/test_configuration.py`` checks
that the file, applied over the spec defaults, equals the decoding for every item.

    .venv/bin/python scripts/config_from_capture.py [--check]
"""

from __future__ import annotations

import sys

from bmsspec import TEST_PLANS_DIR, Spec, load_spec
from bmsspec.config import format_value
from instruments.bms import seplos_codec as codec
from instruments.bms.types import ParameterBlock

#: seplos-v2.md section 7.4, the captured answer to ``~20004647E00200FD32`` (one line).
CAPTURED_47_ANSWER = (
    "~200046008152"
    "003C"
    "0DAC0D480B540C1C0E420D480A8C0C1C0D4805DC15E01518122012C01680151810E012C0189C17D4"
    "0C9F0C810ABF0ADD0CD10C9F0A470AAB0CB30C810A470AC90CD10C9F0A150AAB0AAB0B0F0C9F0C81"
    "0AAB0AC90D030CD10A470AAB0E2F0DFD0E930DFD3A9838A4C374C43C3E80C1808AD007D03E801D4C"
    "1B321E1E140A100A0A1E3C0505010A0A1EF0300F0560506409000D00"
    "08FFFFFF3FBF9FAF1E"
    "313130312D5A41313120"
    "B2BE"
)
CONFIG_FILE = TEST_PLANS_DIR / "configs" / "pack-1101-ZA11-160Ah.yaml"
HEADER = """\
# The configuration of the pack captured in /work/shared/protocols/seplos-v2.md section 7.4:
# the 0x47 answer of the 16S board 1101-ZA11 (rated 160 Ah), decoded with the project's
# codec (instruments/bms/seplos_codec.py). Written by scripts/config_from_capture.py; only
# the items that differ from the spec defaults are listed (every other item of the capture
# equals its default; tests/test_configuration.py checks both).
#
#   bmshil run --parameters test_plans/configs/pack-1101-ZA11-160Ah.yaml
"""


def decode_capture(spec: Spec) -> ParameterBlock:
    """The captured block in spec units (the frame's checksums are verified)."""
    frame = codec.decode_frame(CAPTURED_47_ANSWER.encode("ascii") + b"\r")
    return codec.block_values(codec.decode_block(frame.info), spec.parameters, spec.switches)


def config_text(spec: Spec) -> str:
    block = decode_capture(spec)
    lines = [HEADER.rstrip("\n")]
    for p in spec.parameters:
        value = block.values[p.number]
        if abs(value - p.default) > p.resolution / 2:
            lines.append(
                f"P{p.number}: {format_value(p, value)}  "
                f"# {p.name} (spec default {format_value(p, p.default)} {p.unit})"
            )
    for s in spec.switches:
        if block.switches[s.number] != s.default:
            on = "true" if block.switches[s.number] else "false"
            lines.append(f"S{s.number}: {on}  # {s.name}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = config_text(load_spec())
    if "--check" in argv:
        same = CONFIG_FILE.is_file() and CONFIG_FILE.read_text(encoding="utf-8") == text
        print(f"{CONFIG_FILE}: {'up to date' if same else 'differs from the capture'}")
        return 0 if same else 1
    CONFIG_FILE.parent.mkdir(parents=True, exist_ok=True)
    CONFIG_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {CONFIG_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
