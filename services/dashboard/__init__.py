"""Dashboard service: a live web view of the bus with login, charts, history and safe overrides."""

import warnings

import authlib.deprecate  # noqa: F401 - it installs an "always" filter for its own notices when imported

# authlib 1.9 announces a future switch to ``httpx2`` on import; the pinned httpx works, so keep logs clean.
warnings.filterwarnings("ignore", message=r"The httpx module is deprecated")
