"""Trivy's vulnerability DB: built from OSV advisories, merged, pulled, pushed, identified.

Modules, one job each:

* ``osv`` — reading OSV records from files, directories and export zips;
* ``ranges``, ``debian``, ``cvss`` — what a record's versions and scores become in Trivy's DB;
* ``convert`` — records → Trivy's bucket layout (schema 2);
* ``bbolt`` / ``bboltread`` — writing and reading the bbolt file Trivy keeps the DB in;
* ``metadata`` — ``metadata.json``: schema version, age of the data, what the DB holds;
* ``build`` — ``harden db build``, alone or merged into an upstream DB;
* ``cache`` — replacing ``CACHE/db`` whole, atomically;
* ``artifact`` — the ``db.tar.gz`` layer, packed and checked on unpacking;
* ``registry`` — the OCI distribution calls (pull with fallback, push);
* ``identity`` — which DB a cache holds, for reports.
"""
