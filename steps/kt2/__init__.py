"""Step definitions of the KT2 suite (features/kt2): thin glue between Gherkin and the simulated actors."""
