"""Fleet planning: many homes (one topic prefix each, ``batsched/site-0042``) planned by a shared-subscription group
of planner processes on one broker. See docs/fleet.md."""
