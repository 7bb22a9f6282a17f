"""Pending updates: what the package archive has that an image lacks (see ``interface``)."""
