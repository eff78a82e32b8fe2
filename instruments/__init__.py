"""bms-hil: instruments."""
