"""Logging set-up for the entry points (never at import)."""

import logging
import os


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("WARROOM_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
