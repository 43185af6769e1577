"""Cluster mode across nodes: what one node writes, the other reads, through its own mount and
its own volume socket.

Two vineyardd (from the vineyard wheel) on one etcd stand for two nodes, each with RPC on a
port of its own and a driver instance of its own (as in test_cluster.py). Bytes move between
them only as vineyard moves them: node B's vineyardd migrates an object from A's over
vineyard's RPC (`migrate_object_request`), and B serves the local copy zero-copy.
"""

import errno
import json
import os

import numpy as np
import pandas as pd
import pytest
import vineyard

from harness.cluster import ETCD, create_volume, two_node_cluster, wait_for

pytestmark = pytest.mark.skipif(ETCD is None, reason="etcd not installed (Debian package etcd-server; scripts/install-deps.sh)")


@pytest.fixture
def two_nodes(workdir):
    """Two nodes whose vineyardd hold 1 GiB each: a 256 MiB file and its copy fit."""
    with two_node_cluster(workdir, vineyardd_size="1Gi") as nodes:
        yield nodes


def shared_volume(nodes, name, size=768 << 20):
    """A volume published on both nodes: (volume, mount on a, mount on b)."""
    volume = create_volume(nodes["node_a"].clients, name, size=size)
    return volume, nodes["node_a"].publish(volume), nodes["node_b"].publish(volume)


def unpublish_both(nodes, volume):
    nodes["node_b"].unpublish(volume)
    nodes["node_a"].unpublish(volume)


def test_a_file_written_on_node_a_reads_byte_identical_through_node_bs_mount_and_socket(two_nodes):
    volume, mount_a, mount_b = shared_volume(two_nodes, "pvc-cross-file")
    try:
        data = np.random.default_rng(21).integers(0, 256, size=256 << 20, dtype=np.uint8).tobytes()
        (mount_a / "big.bin").write_bytes(data)
        wait_for(lambda: "big.bin" in os.listdir(mount_b), timeout=15, what="the name on node b")
        a_instance = two_nodes["a"].client().instance_id
        deployment_b = two_nodes["b"].client()
        original = deployment_b.get_name(f"{volume.volume_id}/big.bin")
        assert deployment_b.get_meta(original, sync_remote=True).instance_id == a_instance
        # B's mount: vineyardd on B migrates the file's blobs from A over vineyard's RPC, then
        # the mount serves the local copy.
        with open(mount_b / "big.bin", "rb") as reader:
            assert reader.read() == data
        # A second read (a new open, past the page cache) reads the same copy: B's vineyardd
        # holds no second one.
        used = deployment_b.status.memory_usage
        assert used >= len(data)
        with open(mount_b / "big.bin", "rb", buffering=0) as reader:
            os.posix_fadvise(reader.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            assert reader.read() == data
        assert deployment_b.status.memory_usage == used
        # B's socket: the same migration, asked by vineyard's client; the copy is the one the
        # mount reads (vineyardd migrates an original once).
        b = vineyard.connect(str(mount_b / "vineyard.sock"))
        copy = b.migrate(original)
        assert copy != original
        meta = b.get_meta(copy)
        assert meta.islocal and meta.instance_id == b.instance_id and meta.typename == "vineyard-csi::File"
        chunks = [meta[f"chunk_{i}"].id for i in range(len(eval(meta["chunk_lengths_"])))]
        lengths = eval(meta["chunk_lengths_"])
        read = b"".join(bytes(memoryview(blob))[:length] for blob, length in zip(b.get_blobs(chunks), lengths))
        assert read == data
        assert b.migrate(original) == copy
        # The copy is the volume's (it carries the original's fields, the volume's stamp
        # among them): another volume's socket sees neither.
        other = create_volume(two_nodes["node_b"].clients, "pvc-cross-other")
        target = two_nodes["node_b"].publish_another(other, "other")
        try:
            c = vineyard.connect(str(target / "vineyard.sock"))
            assert not c.exists(copy) and not c.exists(original)
            with pytest.raises(vineyard.ObjectNotExistsException):
                c.migrate(original)
            c.close()
        finally:
            two_nodes["node_b"].unpublish_another(other, "other")
        b.close()
    finally:
        unpublish_both(two_nodes, volume)


def test_a_dataframe_written_on_node_a_reads_identical_through_node_bs_mount_and_socket(two_nodes):
    volume, mount_a, mount_b = shared_volume(two_nodes, "pvc-cross-frame")
    try:
        frame = pd.DataFrame({"x": np.arange(1_000_000), "y": np.linspace(0, 1, 1_000_000),
                              "z": np.arange(1_000_000) % 13})
        a = vineyard.connect(str(mount_a / "vineyard.sock"))
        original = a.put(frame, persist=True, name="frame")
        frame.to_pickle(mount_a / "frame.pkl")
        b = vineyard.connect(str(mount_b / "vineyard.sock"))
        wait_for(lambda: {"frame", "frame.pkl"} <= set(b.list_names("*", limit=100)), timeout=15,
                 what="the names on node b")
        # Through B's socket, as vineyard's own client fetches from another instance.
        got = b.get(name="frame", fetch=True)
        pd.testing.assert_frame_equal(got, frame)
        copy = b.migrate(original)
        assert copy != original and b.get_meta(copy).islocal
        assert not b.get(copy)["x"].to_numpy().flags["OWNDATA"], "the copy must be mapped, not copied again"
        # Through B's mount.
        pd.testing.assert_frame_equal(pd.read_pickle(mount_b / "frame.pkl"), frame)
        a.close()
        b.close()
    finally:
        unpublish_both(two_nodes, volume)


def test_fluid_style_tasks_on_two_nodes_share_objects_through_var_run(two_nodes):
    from test_vineyard_config import PREPROCESS, TEST, TRAIN, run_task
    volume, mount_a, mount_b = shared_volume(two_nodes, "pvc-cross-fluid")
    try:
        # preprocess on A; train on B fetches A's arrays; test on A fetches B's model.
        assert (task := run_task(mount_a, PREPROCESS)).returncode == 0, task.stdout + task.stderr
        b = vineyard.connect(str(mount_b / "vineyard.sock"))
        wait_for(lambda: {"x_train", "y_train"} <= set(b.list_names("*", limit=100)), timeout=15, what="names on b")
        assert (task := run_task(mount_b, TRAIN)).returncode == 0, task.stdout + task.stderr
        a = vineyard.connect(str(mount_a / "vineyard.sock"))
        wait_for(lambda: "model" in a.list_names("*", limit=100), timeout=15, what="the model on a")
        test = run_task(mount_a, TEST)
        assert test.returncode == 0, test.stdout + test.stderr
        result = json.loads(test.stdout.strip().splitlines()[-1])
        assert result["rmse"] < 0.05
        assert result["weights"] == pytest.approx([2.0, -1.0, 0.5, 3.0], abs=0.01)
        model = b.get_meta(b.get_name("model"))
        assert model.instance_id == b.instance_id  # trained on B, fetched by A
        a.close()
        b.close()
    finally:
        unpublish_both(two_nodes, volume)


def test_streams_are_the_volumes_on_the_vineyardd_backend(two_nodes):
    from vineyard.io.byte import ByteStream
    node = two_nodes["node_a"]
    volume, other = create_volume(node.clients, "pvc-stream-a"), create_volume(node.clients, "pvc-stream-b")
    mount, target = node.publish(volume), node.publish_another(other, "other")
    try:
        a = vineyard.connect(str(mount / "vineyard.sock"))
        b = vineyard.connect(str(target / "vineyard.sock"))
        stream = ByteStream.new(a)
        # Another volume's client cannot take either side, write to, stop or drop it.
        for attempt in (lambda: b.open_stream(stream.id, "r"), lambda: b.open_stream(stream.id, "w"),
                        lambda: b.new_buffer_chunk(stream.id, 16), lambda: b.stop_stream(stream.id, False),
                        lambda: b.drop_stream(stream.id)):
            with pytest.raises(vineyard.ObjectNotExistsException):
                attempt()
        # The volume's own clients use it as vineyard's do.
        writer = stream.open_writer(a)
        chunk = writer.next(5)
        memoryview(chunk)[:] = b"hello"
        writer.finish()
        reader = stream.open_reader(vineyard.connect(str(mount / "vineyard.sock")))
        assert bytes(memoryview(reader.next())) == b"hello"
        a.close()
        b.close()
    finally:
        node.unpublish_another(other, "other")
        node.unpublish(volume)


def test_copies_count_in_vineyardds_memory_not_the_quota_and_go_with_the_volume(two_nodes):
    from conftest import csi_pb2
    volume, mount_a, mount_b = shared_volume(two_nodes, "pvc-cross-copies", size=64 << 20)
    deployment_b = two_nodes["b"].client()
    published = True
    try:
        data = os.urandom(40 << 20)
        (mount_a / "f.bin").write_bytes(data)
        wait_for(lambda: "f.bin" in os.listdir(mount_b), timeout=15, what="the name on node b")
        before = os.statvfs(mount_b)
        memory_before = deployment_b.status.memory_usage
        assert (mount_b / "f.bin").read_bytes() == data
        # The copy takes B's vineyardd memory; the volume's quota counts the file once,
        # wherever it is read (40 of 64 MiB used: a second 40 MiB file still does not fit).
        assert deployment_b.status.memory_usage >= memory_before + len(data)
        after = os.statvfs(mount_b)
        assert after.f_blocks == before.f_blocks
        assert after.f_bavail * after.f_frsize < (64 << 20) - len(data) + (1 << 20)
        with pytest.raises(OSError):
            (mount_b / "g.bin").write_bytes(data)
        original = deployment_b.get_name(f"{volume.volume_id}/f.bin")
        copy = deployment_b.migrate(original)
        assert copy != original
        # Deleting the volume deletes the copies too (here through node a's vineyardd: the
        # deletion reaches b's through etcd and frees its memory).
        unpublish_both(two_nodes, volume)
        published = False
        two_nodes["node_a"].clients.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id))
        wait_for(lambda: not deployment_b.exists(copy), timeout=15, what="the copy deleted on b")
        wait_for(lambda: deployment_b.status.memory_usage <= memory_before, timeout=15, what="b's memory back")
        assert not deployment_b.exists(original)
    finally:
        if published:
            unpublish_both(two_nodes, volume)


def test_a_copy_that_does_not_fit_in_the_reading_nodes_vineyardd_is_enospc(two_nodes):
    volume, mount_a, mount_b = shared_volume(two_nodes, "pvc-cross-full", size=1 << 30)
    node_b = two_nodes["node_b"]
    filler = create_volume(node_b.clients, "pvc-cross-filler", size=1 << 30)
    filled = node_b.publish_another(filler, "filler")
    try:
        block = os.urandom(1 << 20)
        for path in (mount_a / "on-a.bin", filled / "on-b.bin"):
            with open(path, "wb") as writer:
                for _ in range(600):  # of each vineyardd's 1 GiB
                    writer.write(block)
        wait_for(lambda: "on-a.bin" in os.listdir(mount_b), timeout=15, what="the name on node b")
        with pytest.raises(OSError) as full:
            (mount_b / "on-a.bin").read_bytes()
        assert full.value.errno == errno.ENOSPC
        # Room made on B, the same read migrates.
        os.unlink(filled / "on-b.bin")
        with open(mount_b / "on-a.bin", "rb") as reader:
            assert reader.read(1 << 20) == block
    finally:
        node_b.unpublish_another(filler, "filler")
        unpublish_both(two_nodes, volume)
