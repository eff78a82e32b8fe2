"""The BMS side of the bench: Seplos V2 and Modbus links decoding into shared typed objects."""
