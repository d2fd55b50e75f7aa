"""How many fuzz cases per target: about 1,000 by default, 10,000 under ``HYPOTHESIS_PROFILE=long`` (``make soak``);
``BATSCHED_FUZZ_EXAMPLES`` overrides both."""

from __future__ import annotations

import os

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
FUZZ_EXAMPLES = int(os.environ.get("BATSCHED_FUZZ_EXAMPLES") or (10_000 if LONG else 1_000))
# The short run (make test) replays the same cases every time, so a failure there is reproducible and not luck;
# the long run (make soak) explores new ones.
DERANDOMIZE = not LONG
# 10,000 cases per target take minutes: the per-test timeout grows with the profile.
TIMEOUT_S = 1800 if LONG else 300
