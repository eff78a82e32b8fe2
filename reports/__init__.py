"""bms-hil: reports."""
