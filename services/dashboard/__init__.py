"""Dashboard service: a live web view of the bus with login, charts, history and safe overrides."""

import warnings

# authlib 1.9 announces a future switch to ``httpx2`` on import; the pinned httpx works, so keep logs clean.
warnings.filterwarnings("ignore", message=r"The httpx module is deprecated")
