"""ktbench: the conformance test bench and simulators for Koppeltaal.

This package is the *engine*: configuration and targets, the DSTU1 codec and
constants, the validator, the proxy addon, the HTTP client layer and the event
stream that feeds the report writers.  Simulators and steps build on it; it
never imports them (see ARCHITECTURE.md).
"""

__version__ = "0.1.0"
