"""Numbers about results: statistics, per-seed results and metrics files, the paired decisions."""
