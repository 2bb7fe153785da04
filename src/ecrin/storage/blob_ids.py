"""New blob ids for stores that shard by id: 32 hex digits, the first four naming the folder
a blob's file goes in (`ab/cd/<id>`).

Ids are random, but runs of consecutive ids share their first four digits: a new blob then
lands in a folder that exists already. With fully random ids, nearly every blob of a young
store created one or two folders and fsynced their parents, and creating an inode is costly
on some file systems (ext4 took up to 0.9 ms of CPU per mkdir on the benchmark machine).
Runs start in random folders, so the folders still fill evenly as the store grows.

Small files' blobs, kept in the database (`services/contents.py`), take their ids from here
too: the id index then grows a few pages at a time instead of at random places (with random
ids, each small PUT dirtied pages of its own in two indexes; inserting cost twice as much
when measured on 20,000 rows)."""

from __future__ import annotations

import secrets

RUN = 256  # consecutive ids that share a folder


class ShardedIds:
    def __init__(self, run: int = RUN) -> None:
        self._run = run
        self._folder = ""
        self._left = 0

    def new(self) -> str:
        if not self._left:
            self._folder, self._left = secrets.token_hex(2), self._run
        self._left -= 1
        return self._folder + secrets.token_hex(14)  # 112 random bits after the folder
