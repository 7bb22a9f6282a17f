"""Facts about a built image, read from its ``docker save`` archive without running it."""

from hardening.inspect.facts import (
    DEFAULT_BINARY_NAMES,
    ImageFacts,
    inspect_image_tar,
    inspect_stream,
)

__all__ = ["DEFAULT_BINARY_NAMES", "ImageFacts", "inspect_image_tar", "inspect_stream"]
