"""Simulated KT1.3 applications *under test*: a portal and an eHealth module a vendor might have built.

They let the application-under-test mode of the bench (features/kt1/apps, steps/kt1_apps) run unattended in
the project's own tests: each implements the driver contract (ktbench.driver) on an HTTP trigger endpoint,
talks KT1 messaging to the bench's reference server through the existing actors (simulators/kt1/actors), and
can be given realistic defects (faults.py) the role suites must catch.
"""
