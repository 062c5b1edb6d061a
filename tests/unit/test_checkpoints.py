"""The one checkpoint loader: four different messages for four different broken files, never executing one."""

from __future__ import annotations

import pytest
import torch

from facemix.models.checkpoints import BadCheckpointError, UnsafeCheckpointError, checkpoint_epoch, load_checkpoint


def test_a_good_checkpoint_loads(checkpoint):
    assert load_checkpoint(checkpoint)["epoch"] == 1


def test_not_a_checkpoint_truncated_corrupt_unsafe_each_say_so(checkpoint, tmp_path):
    data = checkpoint.read_bytes()
    (tmp_path / "notes.txt").write_text("notes")
    (tmp_path / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    corrupt = bytearray(data)
    corrupt[len(data) // 2 : len(data) // 2 + 32] = bytes(32)  # inside the 64 KB of weights
    (tmp_path / "corrupt.ckpt").write_bytes(bytes(corrupt))

    class Evil:
        def __reduce__(self):
            return (print, ("never",))

    torch.save({"state_dict": {}, "x": Evil()}, tmp_path / "evil.ckpt")
    torch.save({"w": torch.ones(1)}, tmp_path / "weights.pth")
    expected = {
        "notes.txt": (BadCheckpointError, "is not a checkpoint"),
        "truncated.ckpt": (BadCheckpointError, "is truncated"),
        "corrupt.ckpt": (BadCheckpointError, "is corrupt"),
        "evil.ckpt": (UnsafeCheckpointError, "refuses to execute"),
        "weights.pth": (BadCheckpointError, "is not a training checkpoint"),
    }
    for name, (kind, words) in expected.items():
        with pytest.raises(kind) as exc:
            load_checkpoint(tmp_path / name)
        assert type(exc.value) is kind and words in str(exc.value) and str(tmp_path / name) in str(exc.value)


def test_the_epoch_is_read_without_loading_the_weights(checkpoint):
    assert checkpoint_epoch(checkpoint) == 1
