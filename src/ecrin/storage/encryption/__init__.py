"""Encryption at rest: an EncryptedBlobStore wraps any BlobStore; keys stay with the customer.

Key hierarchy: a key-encryption key (KEK, in a key file or a PKCS#11 token) wraps one
random data key per blob; the data key seals the blob in AES-256-GCM segments. See
`format.py` for the byte layouts and docs/encryption.md for the threat model.
"""
