"""What the tests and the benchmarks run the controller on: free loopback ports, the demo
district (whole or cut down) on them, and the real controller in front of simulated devices
on a manual clock.

Used from a checkout: the sites are read from ``config/demo.toml`` of the repository.
"""
