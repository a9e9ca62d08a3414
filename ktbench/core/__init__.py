"""The engine's core: errors, secrets, redaction, the event stream, requirements and the generation seam.

Nothing here knows a Koppeltaal generation; generations plug in through `ktbench.core.generation`.
"""
