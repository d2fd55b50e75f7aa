"""``batsched compare-tariffs``: the same household, battery and planner on each Octopus tariff."""
