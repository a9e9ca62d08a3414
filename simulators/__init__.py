"""Simulated Koppeltaal actors: servers and the counter-role applications (portals, eHealth modules)."""
