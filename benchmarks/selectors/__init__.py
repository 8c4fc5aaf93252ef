"""Screening-score study (issue 15 items 2 and 4, issue 18 item 6): how well each candidate score
predicts the judge's verdict for a (prompt, noise) pair, and how much of the oracle best-of-m
headroom picking by it captures. ``python -m benchmarks.selectors`` reproduces
benchmarks/results/selectors.{md,json}."""
