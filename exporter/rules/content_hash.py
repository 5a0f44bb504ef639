"""The rule set's fingerprint exported as `rules_info{sha256}` and shown by `check`.

It depends on the files' content only: each file's bytes are hashed on their own, and the
fingerprint is the sha256 of those digests in sorted order. File names, directory paths and
the order files are read in play no part, so the same rules mounted as `tgi.yaml` on one pod
and `rules.yaml` on another compare equal; any byte changed inside a file (a comment
included) gives a new fingerprint.
"""

import hashlib
from collections.abc import Iterable


def rules_sha256(contents: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for file_digest in sorted(hashlib.sha256(data).digest() for data in contents):
        digest.update(file_digest)
    return digest.hexdigest()
