"""WebDAV (RFC 4918 class 1 and 2, RFC 4331 quotas): one module per verb."""
