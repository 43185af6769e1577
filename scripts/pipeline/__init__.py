"""The housing-price ML pipeline of the seeds, as a benchmark of shared pipeline storage (issue 9)."""
