"""The error funnel: a user's mistake, an OS refusal and a signal each become what a user acts on."""

from __future__ import annotations

import errno
import json
import os

import pytest

from facemix.errors import FacemixConfigError, find_user_error, nearest_key
from facemix.run.failures import interrupt_signal, record_failure
from facemix.run.rundir import RunDir


def test_os_refusals_become_one_paragraph_naming_the_path():
    for code, words in [(errno.EACCES, "folder you own"), (errno.EROFS, "read-only"), (errno.ENOSPC, "disk is full")]:
        error = find_user_error(OSError(code, os.strerror(code), "/data/x/scan_cache"))
        assert isinstance(error, FacemixConfigError) and "/data/x/scan_cache" in str(error) and words in str(error)
    assert find_user_error(OSError(errno.EIO, "I/O error", "/x")) is None  # not the user's to fix: traceback


def test_interrupts_are_told_apart_from_failures():
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    assert interrupt_signal(SIGTERMException()) == "SIGTERM"
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise SystemExit(1)  # noqa: B904 - exactly what Lightning does on Ctrl-C
    except SystemExit as exc:
        assert interrupt_signal(exc) == "SIGINT"
    assert interrupt_signal(RuntimeError("x")) is None


def test_a_failed_run_records_why_and_a_finished_one_is_never_marked(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    with pytest.raises(FacemixConfigError), record_failure(run):
        raise FacemixConfigError("data.root=/nowhere does not exist")
    record = json.loads(run.failure_record.read_text())
    assert record == {"status": "failed", "error": "FacemixConfigError", "message": "data.root=/nowhere does not exist"}
    run.failure_record.unlink()
    run.write_summary({"done": True})
    with pytest.raises(RuntimeError), record_failure(run):
        raise RuntimeError("after the summary")
    assert not run.failure_record.exists()


def test_an_interrupt_before_the_first_checkpoint_says_there_is_nothing_to_resume(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    with pytest.raises(SystemExit) as exit_info, record_failure(run):
        raise KeyboardInterrupt
    assert exit_info.value.code == 130
    record = json.loads(run.failure_record.read_text())
    assert (
        record["status"] == "interrupted" and record["resume_from"] is None and "nothing to resume" in record["message"]
    )


def test_the_nearest_key_is_named_only_when_one_is_close():
    assert nearest_key("data.batchsize", ["data.batch_size", "data.root"]) == "data.batch_size"
    assert nearest_key("zzz", ["data.batch_size"]) is None


def test_ctrl_c_inside_a_finalizer_still_stops_the_run_at_the_next_batch(tmp_path):
    """Python drops a KeyboardInterrupt raised inside ``__del__`` ("Exception ignored in ..."): a Ctrl-C that
    arrived while a loader iterator was being collected was lost and the run trained on to exit 0. With
    ``InterruptAtNextBatch`` the signal is recorded and the next batch stops the run as Lightning's Ctrl-C does."""
    import os
    import signal

    import pytorch_lightning as pl
    import torch

    from facemix.training.callbacks import InterruptAtNextBatch

    class Collected:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)  # delivered while the finalizer runs

    class Net(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)
            self.steps = 0

        def training_step(self, batch, batch_idx):
            self.steps += 1
            if batch_idx == 2:
                Collected()  # collected at once: the signal arrives inside __del__
            return self.layer(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(40, 2)), batch_size=2)
    net, before = Net(), signal.getsignal(signal.SIGINT)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[InterruptAtNextBatch()],
                         default_root_dir=tmp_path)  # fmt: skip
    try:
        with pytest.raises(SystemExit) as stopped:  # Lightning's graceful Ctrl-C: sys.exit(1) in the handler
            trainer.fit(net, data)
        assert interrupt_signal(stopped.value) == "SIGINT"
        assert net.steps == 3  # the batch after the signal never ran (of 20)
    finally:
        signal.signal(signal.SIGINT, before)
