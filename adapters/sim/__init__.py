"""Simulated devices: pymodbus servers presenting the same SunSpec models and register maps
as the real devices, with physics, so everything runs on a fresh machine with no hardware.
Start with :class:`adapters.sim.fleet.SimFleet` or ``vpp simulate``.
"""
