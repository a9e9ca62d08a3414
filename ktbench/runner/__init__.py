"""The runner: one way to run a suite (`suite_run.run_suite`) and the pytest plugin it loads (`plugin`).

The plugin is split by concern: `state` (what one run and one scenario hold), `tags` (tag expressions and
@req/@role tags), `outcomes` (failed vs broken, and which requirement a failure names), `verdict` (the
profile check, keyed on who sent a message), `allure_bridge`, `xdist_relay`, `scrub` (secrets out of every
output) and `fixtures`.  `plugin` wires the hooks.
"""
