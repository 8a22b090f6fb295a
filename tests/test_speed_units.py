"""run.speed in TOML with units ("10ms/s", "max") as every other value has, and the old bare
numbers (microseconds per wall second, 0 for max) still read."""

from __future__ import annotations

import tomllib

import pytest

from explorer.config import ConfigError, dumps_config, loads_config


@pytest.mark.parametrize("written, canonical", [
    ('"10ms/s"', 10_000.0), ('"1us/s"', 1.0), ('"1s/s"', 1_000_000.0), ('"max"', 0.0),
    ("10000.0", 10_000.0), ("0.0", 0.0), ("100", 100.0),  # the old bare numbers
])
def test_speed_reads_units_and_bare_numbers(registry, written, canonical):
    config = loads_config(f"[run]\nspeed = {written}\n", registry)
    assert config["run"]["speed"] == canonical


def test_speed_is_written_with_units(registry):
    for old, new in (("10000.0", "10ms/s"), ("0.0", "max"), ("2500", "2500us/s")):
        text = dumps_config(loads_config(f"[run]\nspeed = {old}\n", registry), registry)
        assert tomllib.loads(text)["run"]["speed"] == new
        assert loads_config(text, registry)["run"]["speed"] == loads_config(f"[run]\nspeed = {old}\n",
                                                                            registry)["run"]["speed"]


def test_a_bad_speed_says_what_is_expected(registry):
    with pytest.raises(ConfigError) as exc:
        loads_config('[run]\nspeed = "5 parsecs"\n', registry, "my.toml")
    assert "run.speed" in str(exc.value) and "'10ms/s'" in str(exc.value) and "'max'" in str(exc.value)
