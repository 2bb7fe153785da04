"""A sharee's real `nextcloudcmd` sees what was shared with them and edits it both ways."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.nextcloud_fixtures import EcrinProcess, ecrin_server, local_tree, server_tree
from tests.e2e.test_nextcloudcmd import NEXTCLOUDCMD, assert_ok, sync

__all__ = ["ecrin_server"]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(NEXTCLOUDCMD is None, reason="nextcloudcmd is not installed"),
]


def test_sharee_syncs_a_shared_folder_both_ways(ecrin_server: EcrinProcess, tmp_path: Path) -> None:
    owner = ecrin_server.new_user("teacher")
    sharee = ecrin_server.new_user("pupil")
    with owner.client() as dav:
        root = owner.dav_root
        assert dav.request("MKCOL", root + "/Class").status_code == 201
        assert dav.request("MKCOL", root + "/Class/Week 1").status_code == 201
        assert (
            dav.put(root + quote("/Class/Week 1/exercise.txt"), content=b"2+2=?").status_code == 201
        )
        assert dav.put(root + "/Class/syllabus.txt", content=b"syllabus").status_code == 201
        assert dav.put(root + "/private.txt", content=b"not shared").status_code == 201
    ecrin_server.ecrin("share", "user", "teacher", "/Class", "pupil", "--permissions", "15")

    local, home = tmp_path / "pupil", tmp_path / "home"
    local.mkdir()
    home.mkdir()
    assert_ok(sync(sharee, local, home))
    assert (local / "Class/Week 1/exercise.txt").read_bytes() == b"2+2=?"
    assert not (local / "private.txt").exists()
    assert local_tree(local) == server_tree(sharee)

    # The pupil answers locally: the teacher sees it on the server.
    (local / "Class/Week 1/exercise.txt").write_bytes(b"2+2=4")
    (local / "Class/Week 1/my notes.txt").write_bytes(b"notes")
    assert_ok(sync(sharee, local, home))
    with owner.client() as dav:
        answer = dav.get(owner.dav_root + quote("/Class/Week 1/exercise.txt"))
        assert answer.content == b"2+2=4"
        notes = dav.get(owner.dav_root + quote("/Class/Week 1/my notes.txt"))
        assert notes.content == b"notes"
        # The teacher corrects on the server: the pupil's next sync brings it down.
        assert (
            dav.put(owner.dav_root + "/Class/syllabus.txt", content=b"syllabus, v2").status_code
            == 204
        )
    assert_ok(sync(sharee, local, home))
    assert (local / "Class/syllabus.txt").read_bytes() == b"syllabus, v2"
    assert local_tree(local) == server_tree(sharee)
    assert server_tree(sharee, "Class") == server_tree(owner, "Class")
