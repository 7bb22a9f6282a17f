"""hardening: build hardened container images, prove they are hardened, scan them, gate releases."""

__version__ = "0.1.0"
