"""Root conftest: the project's own tests live in tests/; the bms-hil plugin is loaded by entry point."""
