"""Test procedures: nominal state and isolation, threshold search, delays, switches, the
parameter block and functions. Each is usable outside pytest: give it an open bench, the spec
and a case (``runner.run_case``)."""
