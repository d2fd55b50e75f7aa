"""Daily plan-vs-actual accounting: a small job beside the executor that publishes ``executor/daily_summary``."""
