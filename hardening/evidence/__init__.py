"""Release evidence: signing keys, signatures and attestations in cosign's tag scheme, and their check.

What a consumer gets with every image `harden release` pushes, stored beside the image in the same
repository (the Debian registry has no referrers API, so cosign's tags are the common ground):

- ``sha256-<digest>.sig``: the image signature over cosign's simple-signing payload;
- ``sha256-<digest>.att``: DSSE envelopes of in-toto statements about that digest — the CycloneDX
  SBOM of the scan, SLSA provenance v1, an OpenVEX document of the accepted findings and the gate
  record.

Modules: ``keys`` (ECDSA P-256 keys), ``dsse`` (envelopes), ``statements`` (in-toto statements,
the attestation kinds, the simple-signing payload), ``vex``, ``provenance``, ``gaterecord`` (the
predicates), ``inputs`` (what a run recorded), ``oci`` (the registry client), ``publish`` (push)
and ``verify``.
"""
