from ecrin.storage.blob_ids import ShardedIds


def test_runs_of_ids_share_their_folder_and_stay_unique() -> None:
    ids = ShardedIds(run=4)
    made = [ids.new() for _ in range(4 * 50)]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in made)
    assert len(set(made)) == len(made)
    runs = [made[start : start + 4] for start in range(0, len(made), 4)]
    assert all(len({i[:4] for i in run}) == 1 for run in runs)
    assert len({run[0][:4] for run in runs}) > 40  # each run starts in a random folder
