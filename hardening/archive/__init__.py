"""What the Debian archive knows about an image's packages, read from a mirror alone.

``InRelease`` of ``<suite>``, ``<suite>-updates`` and ``<suite>-security`` verified with gpgv and
the archive keyring (``release``), their ``Packages`` indexes hash-checked and cached
(``index``, ``cache``), an image's installed packages compared with them (``image``,
``outdated``), and the CVE ids the candidates' Debian changelogs name (``changelog``), also as
OSV records for ``harden db build`` (``osv``). No CVE database is needed.
"""
