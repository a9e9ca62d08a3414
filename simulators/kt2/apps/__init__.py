"""The bench's simulated KT2 applications UNDER TEST: a portal and an eHealth module that implement the
driver contract (ktbench/driver), so the application-under-test suites (features/kt2/apps) run unattended
in the project's own tests.  Each has fault flags (faults.py) that make it behave the way real applications
get KT2 wrong; the role suites must catch every one.  They reuse the bench's client code
(simulators/kt2/actors) for assertions, keys and REST calls rather than re-implementing it.
"""
