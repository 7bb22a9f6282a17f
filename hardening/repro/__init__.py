"""Reproducible images: the same inputs give the same image id.

After the engine builds, every layer the build made is rewritten in a canonical form (``layer``:
entries sorted, every time set to ``SOURCE_DATE_EPOCH``, numeric owners only, no header noise)
without the files that only record the build (``rules``); the image config's clock readings are
replaced by that epoch (``config``); the result is loaded back into the engine (``image``) and is
what gets tagged, scanned and gated. ``inputs`` records what a build was made from and compares two
records; ``rebuild`` builds a released image again from its provenance and compares.
"""

# Bump whenever the rewrite would give other bytes for the same image (a rule, the header
# format, the config fields): remembered rewrites stop matching, and bases are made again.
NORMALISER_VERSION = 2
