"""Root conftest: the project's own tests live in tests/.

The bms-hil plugin is loaded through its pytest11 entry point, not from here."""
