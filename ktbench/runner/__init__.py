"""The runner: one way to run a suite (`suite_run.run_suite`, `kill_matrix`) and the pytest plugin it loads.

The plugin (`plugin`, which only wires the hooks) is split by concern: `options` (the --kt-* options and the
live validator), `configure` (generations, target, writers), `collection` (tags -> labels, selection),
`lifecycle` (run, scenario and step events; the requirement scope; the profile check), `reporting` (outcome,
the requirement a failure blames, ScenarioFinished), `state`, `tags`, `outcomes`, `verdict`, `fixtures`,
`allure_bridge`, `xdist_relay` and `scrub` (secrets out of every output).
"""
