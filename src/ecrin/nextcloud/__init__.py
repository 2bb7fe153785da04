"""Endpoints the Nextcloud and ownCloud clients speak besides WebDAV (status, OCS, chunking)."""
