"""bmssim: the simulated bench. A Seplos V2 BMS twin and SCPI instrument simulators served over
the same wire protocols as a real bench, on a virtual clock."""
