"""The application driver contract: how the bench makes an application under test act.

When a vendor's portal or eHealth module is the target, a scenario needs it to do something (send a patient,
assign an activity, launch a module, process its mailbox) and then judges the traffic that follows at the
bench's own reference server.  The bench asks through one of three interchangeable drivers
(`ktbench.driver.drivers`): an HTTP trigger endpoint the vendor implements, a command hook run with the action
as JSON on stdin, or an interactive prompt for a person.  Every action and every reply is checked against the
JSON schemas shipped next to this module (`action.schema.json`, `reply.schema.json`), on both sides: the
bench's simulated applications validate what they receive with the same `contract` module.
"""
