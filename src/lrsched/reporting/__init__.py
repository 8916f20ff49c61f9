"""The study's report: study-wide figures, the compute budget, reports/summary.md."""
