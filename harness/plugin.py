"""pytest plugin of bms-hil (entry point ``pytest11: bmshil``).

Kept thin: hook declarations that hand over to ``harness.procedures`` and ``harness.plan``.
"""
