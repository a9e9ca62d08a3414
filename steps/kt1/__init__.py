"""Step modules of the KT1.3 suite (`ktbench run --suite kt1`); scenarios live in features/kt1/."""
