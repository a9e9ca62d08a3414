"""Report writers: subscribers of the event stream (ktbench.core.events).

* `allure_writer.AllureAttachmentWriter` - HTTP exchanges and validation findings as attachments of the running step;
* `results.RunResults` - aggregates scenario outcomes per requirement (shared by the two summaries);
* `console.ConsoleSummary` - the rich per-requirement table at the end of a run;
* `summary_json.JsonSummaryWriter` - reports/out/summary.json for pipelines;
* `ndjson.NdjsonEventWriter` - the raw event log (`ktbench run --events FILE`);
* `junit` / `scrub` - post-processing of pytest's JUnit XML (broken -> <error>) and of every output file
  (no configured or learned secret may survive in a report).

JUnit itself comes from pytest's --junitxml.
"""
