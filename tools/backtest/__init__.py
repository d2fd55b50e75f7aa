"""``batsched backtest``: replay a household's own year through the planner and report what it would have saved."""
