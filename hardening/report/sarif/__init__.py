"""Findings as SARIF 2.1.0 for GitHub code scanning: the only package that knows SARIF's shape.

Design points a reader needs before changing anything here:

* One file per image, one run per tool (Trivy for scanner findings, hardening for policy
  findings), every run with ``automationDetails.id`` set to the image's category. A run is written
  for every tool given, even with no results: GitHub closes an alert only when a later analysis
  of the same tool and category no longer reports it.
* Every result points at a line of a file in this repository (the rendered Dockerfile line
  responsible, else the caller's fallback), never at the image: code scanning can only anchor
  alerts to repository files.
* ``partialFingerprints.primaryLocationLineHash`` is ``<hash>:<occurrence>``. The hash covers rule
  id, package, installed version, path in the image, image name without tag or digest, and the
  whitespace-normalised text of the responsible line: it survives rebuilds (new image ids, tags,
  times) and edits that only move the line. Findings equal in all of these are numbered in a
  content order so they stay distinct and the numbering does not depend on input order.
* GitHub code scanning ignores ``suppressions``: a suppressed result uploaded is an open alert.
  The log for upload therefore leaves out what the gate accepted (suppressed and baselined
  findings) and counts it in the run's ``properties``; the full log keeps every result with a
  SARIF suppression. Fingerprints are numbered before anything is left out, so a result has
  the same fingerprint in both.
* ``security-severity`` is the CVSS score when the finding has one, else the fallback below
  (chosen inside the band GitHub maps each severity to: >= 9.0 critical, 7.0-8.9 high,
  4.0-6.9 medium, 0.1-3.9 low; 0.0 means "no security severity").
* GitHub keeps only the 5,000 most severe results per run; we truncate ourselves, most severe
  first, so that what is dropped is our choice, and say so in the run's ``properties`` and in a
  ``toolExecutionNotifications`` entry.
* The log is sarif-om's object model written as JSON: sarif-om's property names and field
  order, every value equal to the model's default left out (no ``-1`` indexes, ``"en-US"`` or
  newline-sequence noise). It is built as plain dicts, not sarif-om objects: an object graph per
  result cost more than the rest of a conversion. ``tests/unit/test_sarif_vocabulary.py`` loads
  every log we write back into sarif-om's classes and holds it to that.

One module per job: ``vocabulary`` (constants, ``ToolInfo``), ``build`` (the log and its runs),
``rules`` and ``results`` (their SARIF objects), ``locations``, ``fingerprint``, ``text``
(escaping and clipping), ``serialise`` (the log as bytes, msgspec's encoder) and ``read``
(SARIF back into findings).
"""

from hardening.report.sarif.build import build_sarif
from hardening.report.sarif.read import findings_from_sarif
from hardening.report.sarif.serialise import dumps, write_sarif
from hardening.report.sarif.vocabulary import FALLBACK_SECURITY_SEVERITY, ToolInfo, default_category

__all__ = [
    "FALLBACK_SECURITY_SEVERITY",
    "ToolInfo",
    "build_sarif",
    "default_category",
    "dumps",
    "findings_from_sarif",
    "write_sarif",
]
