"""How many SQL statements the everyday operations send (each has a cost of its own, and on
PostgreSQL a round trip; docs/benchmarks.md), and how many transactions a request opens (each
costs more than a statement). A path is resolved in one statement whatever its depth; a change
reaches every folder above it in one more. These bounds fail when a change adds some."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from ecrin.app import EcrinApp
from ecrin.core.model import User
from ecrin.core.paths import DavPath
from tests.services.statements import StatementCounter, TransactionCounter, counting
from tests.support import Dav


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
async def user(app: EcrinApp, alice: Dav) -> User:
    await alice.mkcol("/a")
    await alice.mkcol("/a/b")
    await alice.mkcol("/a/b/c")
    await alice.put("/a/b/c/existing.txt", b"x" * 4096, status=201)
    await alice.put("/a/gone.txt", b"x", status=201)
    return await app.runtime.services.accounts.get_user("alice")


@pytest.fixture
def statements(app: EcrinApp) -> Iterator[StatementCounter]:
    with counting(app.runtime.metadata.engine) as counter:
        yield counter


def path(text: str) -> DavPath:
    return DavPath.parse(text)


async def test_reading(app: EcrinApp, user: User, statements: StatementCounter) -> None:
    files = app.runtime.services.files
    _, stat = await statements.count(files.stat(user, path("/a/b/c/existing.txt")))
    _, listing = await statements.count(files.list_folder(user, path("/a/b/c")))
    _, missing = await statements.count(files.lookup(user, path("/a/b/c/missing.txt")))
    assert (stat, listing, missing) == (1, 2, 1), statements.statements


async def test_opening_a_small_file_reads_its_bytes_with_its_path(
    app: EcrinApp, user: User, statements: StatementCounter
) -> None:
    files = app.runtime.services.files
    opened, read = await statements.count(files.open(user, path("/a/b/c/existing.txt")))
    # Where small files' bytes are kept in the database (not when encrypted), the walk brings
    # them; else the store's blob is looked up after it.
    kept = app.runtime.settings.effective_inline_max_bytes >= 4096
    assert opened.content == (b"x" * 4096 if kept else None)
    assert read == (1 if kept else 2), statements.statements


async def test_writing_files(app: EcrinApp, user: User, statements: StatementCounter) -> None:
    files = app.runtime.services.files
    upload = files.upload(user, path("/a/b/c/new.txt"), body(b"y" * 4096), length=4096)
    created, new = await statements.count(upload)
    assert created.created
    upload = files.upload(user, path("/a/b/c/new.txt"), body(b"z" * 4096), length=4096)
    _, overwrite = await statements.count(upload)
    # new: resolve, usage and quota, blob, node, every folder above
    # overwrite: resolve, blob, version, retention, node, every folder above
    assert (new, overwrite) == (5, 6), statements.statements


async def test_tree_operations(app: EcrinApp, user: User, statements: StatementCounter) -> None:
    files = app.runtime.services.files
    await files.delete(user, path("/a/gone.txt"))  # the trash folder now exists
    _, mkcol = await statements.count(files.make_folder(user, path("/a/b/c/new")))
    move = files.move(user, path("/a/b/c"), path("/a/moved"), overwrite=False)
    _, moved = await statements.count(move)
    _, deleted = await statements.count(files.delete(user, path("/a/moved")))
    # move: both paths, the node, the folders above where it was and where it lands
    # delete: the path, the original path, the trash folder, the node, its trash record,
    # the folders above, usage
    assert (mkcol, moved, deleted) == (3, 5, 7), statements.statements


@pytest.fixture
def transactions(app: EcrinApp, monkeypatch: pytest.MonkeyPatch) -> TransactionCounter:
    return TransactionCounter(app.runtime.metadata, monkeypatch)


NAMED = ["d:resourcetype", "d:getcontentlength", "d:getlastmodified", "d:getetag"]
NEXTCLOUD = [*NAMED, "oc:fileid", "oc:permissions", "oc:share-types", "d:quota-available-bytes"]


async def test_transactions_per_request(
    alice: Dav, user: User, transactions: TransactionCounter
) -> None:
    """A PROPFIND reads the listing, dead properties, locks, share types and the user's
    quota in one read transaction; a GET reads in one; a small PUT stores its body in one
    write that checks everything; a large one checks the target, its locks and the quota in
    one read before the body, then stores it in one write."""
    await alice.get("/a/b/c/existing.txt")  # the credential is cached: no transaction for it
    opened = {}
    for depth in ("0", "1"):
        for label, props in (("allprop", None), ("named", NAMED), ("nextcloud", NEXTCLOUD)):
            _, opened[f"PROPFIND {depth} {label}"] = await transactions.count(
                alice.propfind("/a/b", props, depth=depth)
            )
    _, opened["PROPFIND of a file"] = await transactions.count(
        alice.propfind("/a/b/c/existing.txt", depth="1")
    )
    _, opened["GET"] = await transactions.count(alice.get("/a/b/c/existing.txt"))
    assert opened == {request: ["read"] for request in opened}
    _, created = await transactions.count(alice.put("/a/b/new.txt", b"x" * 4096, status=201))
    _, replaced = await transactions.count(alice.put("/a/b/new.txt", b"y", status=204))
    large = alice.put("/a/b/large.bin", b"z" * (1024 * 1024), status=201)
    _, large_created = await transactions.count(large)
    assert created == replaced == ["write"]
    assert large_created == ["read", "write"]
