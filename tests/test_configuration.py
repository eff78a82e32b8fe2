"""The device configuration under test (``bmsspec.config``): loading, refusals naming file,
key and value, the configured Spec, the captured pack's file, and the CLI around it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bmsspec import load_spec
from bmsspec.config import (
    SPEC_DEFAULTS,
    ConfigurationError,
    canonical_text,
    configuration_text,
    configured,
    configured_spec,
    load_configuration,
    spec_defaults,
)
from harness.cli import app
from harness.plan import build_plan

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "test_plans" / "configs" / "pack-1101-ZA11-160Ah.yaml"


def _script():
    spec = importlib.util.spec_from_file_location(
        "config_from_capture", ROOT / "scripts" / "config_from_capture.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _refused(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigurationError) as err:
        load_configuration(path, load_spec())
    message = str(err.value)
    assert str(path) in message
    return message


# --------------------------------------------------------------------------- the capture


def test_the_pack_file_equals_the_captured_block_for_every_item():
    spec = load_spec()
    block = _script().decode_capture(spec)
    assert block.model_name.strip() == "1101-ZA11"
    pack = configured(spec, configuration=load_configuration(PACK, spec))
    for p in pack.parameters:
        assert abs(p.default - block.values[p.number]) <= p.resolution / 2, p.item
    for s in pack.switches:
        assert s.default == block.switches[s.number], s.item
    # The capture differs from the spec defaults in 14 parameters (issue 9) and is not
    # the defaults (a file that listed nothing would fail above).
    assert len(load_configuration(PACK, spec).values) == 14
    assert pack.param(1).default == 3.5 and spec.param(1).default == 3.55


def test_the_pack_file_is_what_the_script_writes():
    assert PACK.read_text(encoding="utf-8") == _script().config_text(load_spec())


# --------------------------------------------------------------------------- configured Spec


def test_configured_spec_leaves_the_cached_spec_alone():
    spec = load_spec()
    new = configured(spec, {55: 160.0}, {31: True})
    assert new.param(55).default == 160.0 and new.param("P55").default_text == "160.000"
    assert new.switch(31).default is True and new.switch(31).default_text == "Open"
    assert load_spec() is spec
    assert spec.param(55).default == 110.0 and spec.switch(31).default is False
    assert new.sha256 == spec.sha256  # the same tables
    assert new.param(55).range == spec.param(55).range
    assert new.tolerance_for(55) == spec.tolerance_for(55)


def test_the_plan_judges_against_the_configuration():
    spec = load_spec()
    pack, _ = configured_spec(spec, PACK)
    cases = {c.id: c for c in build_plan(pack, suite="regression")}
    assert cases["P01-cell-high-voltage-alarm-trip"].expected == 3.5
    default = {c.id: c for c in build_plan(spec, suite="regression")}
    assert default["P01-cell-high-voltage-alarm-trip"].expected == 3.55


def test_the_hash_is_of_the_configuration_not_of_the_file(tmp_path: Path):
    spec = load_spec()
    a = load_configuration(_write(tmp_path, "P55: 160.0\nS31: false\n", "a.yaml"), spec)
    b = load_configuration(_write(tmp_path, "# a comment\nS31: false\nP55: 160\n", "b.yaml"), spec)
    assert a.sha256 == b.sha256
    # A whole block of the same values (as `config read` writes it) is the same configuration.
    values = {**spec.defaults(), 55: 160.0}
    switches = {**spec.default_switches(), 31: False}
    full = _write(tmp_path, configuration_text(spec, values, switches, "full"), "c.yaml")
    assert load_configuration(full, spec).sha256 == a.sha256
    assert spec_defaults(spec).sha256 != a.sha256
    assert spec_defaults(spec).name == SPEC_DEFAULTS
    assert canonical_text(spec, {}, {}).count("\n") == len(spec.parameters) + len(spec.switches)
    empty = load_configuration(_write(tmp_path, "", "empty.yaml"), spec)
    assert empty.sha256 == spec_defaults(spec).sha256


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P99: 1.0\n", "key P99 = 1.0: no such parameter"),
        ("S65: true\n", "key S65 = True: no such switch"),
        ("X5: 1\n", "key 'X5' = 1: not a spec item"),
        ("5: 3.6\n", "key 5 = 3.6: not a spec item"),
        ("P5: high\n", "key P5 = 'high': a number in V is expected"),
        ("P5: true\n", "key P5 = True: a number in V is expected"),
        ("S31: 1\n", "key S31 = 1: a switch is true (enabled) or false"),
        ("P5: 70.0\n", "key P5 = 70.0: does not fit the wire field"),
        ("P5: 3.6505\n", "key P5 = 3.6505: not a multiple of the resolution 0.001 V"),
        ("P5: 4.6\n", "key P5 = 4.6: P5 (cell-overvoltage-protection) = 4.6 above max 4.5"),
        # A trip/recovery pair broken: the recovery above its trip.
        ("P2: 3.6\n", "key P2 = 3.6: P2 (cell-high-voltage-recovery) = 3.6"),
        # A parameter bounded by another: lowering the bound breaks the configured row.
        ("P1: 3.7\n", "key P1 = 3.7: P1 (cell-high-voltage-alarm) = 3.7 above P5 = 3.65"),
    ],
)
def test_bad_configurations_are_refused_with_file_key_and_value(tmp_path, text, expected):
    assert expected in _refused(tmp_path, text)


def test_not_a_mapping_and_not_yaml(tmp_path: Path):
    assert "a configuration is a mapping" in _refused(tmp_path, "- P5\n")
    assert "not valid YAML" in _refused(tmp_path, "P5: [\n")


def test_every_problem_is_listed_once(tmp_path: Path):
    message = _refused(tmp_path, "P99: 1\nS3: 1\n")
    assert len(message.splitlines()) == 2


# --------------------------------------------------------------------------- CLI


def test_plan_with_parameters(tmp_path: Path):
    runner = CliRunner()
    res = runner.invoke(app, ["plan", "--suite", "smoke", "--json", "--parameters", str(PACK)])
    assert res.exit_code == 0, res.output
    cases = {c["id"]: c for c in json.loads(res.stdout)}
    assert cases["P05-cell-overvoltage-protection-trip"]["expected"] == 3.65
    bad = _write(tmp_path, "P5: 70.0\n")
    res = runner.invoke(app, ["plan", "--parameters", str(bad)])
    assert res.exit_code == 2
    assert f"--parameters: {bad}: key P5 = 70.0" in res.output


def test_run_refuses_a_bad_configuration_before_anything_starts(tmp_path: Path):
    bad = _write(tmp_path, "P1: 3.7\n")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--out", str(out), "--parameters", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{bad}: key P1 = 3.7" in proc.stdout + proc.stderr
    assert not out.exists()


def test_config_read_writes_the_whole_block_and_never_overwrites(tmp_path: Path):
    out = tmp_path / "device.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "config", "read", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    spec = load_spec()
    assert len([k for k in data if k.startswith("P")]) == 87
    assert len([k for k in data if k.startswith("S")]) == 64
    # The simulated device starts at the spec defaults: the read-back is that configuration.
    assert load_configuration(out, spec).sha256 == spec_defaults(spec).sha256
    before = out.read_text(encoding="utf-8")
    again = subprocess.run(
        [sys.executable, "-m", "harness", "config", "read", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 2 and "never overwritten" in again.stderr
    assert out.read_text(encoding="utf-8") == before
