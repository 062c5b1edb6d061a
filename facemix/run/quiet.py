"""Library lines a facemix user need not read, kept out of the console and train.log unless ``verbose=true``.

Filtered by message at the logger / warnings level (never by redirecting output), so everything else a library says
still shows: Lightning's cloud-logging tip, its note that ``limit_*_batches=1.0`` means all batches, its own
deprecation warning about torch's ``LeafSpec``, "not supported by the model summary", the logging-interval note of
short epochs, the "checkpoint directory exists" note of every resume. facemix prints its own one-line model summary
instead of Lightning's table (whose FLOPs column reads 0 for models without an example input).
"""

from __future__ import annotations

import logging
import warnings

# logger name -> phrases of the lines dropped
LOG_NOISE = {
    "pytorch_lightning.utilities.rank_zero": (
        "litlogger",
        "was configured so 100% of the batches",
        "GPU available:",
        "TPU available:",
        "HPU available:",
    ),
}
WARNING_NOISE = (
    r".*isinstance\(treespec, LeafSpec\).*",
    r".*is not supported by the model summary.*",
    r"The number of training batches \(\d+\) is smaller than the logging interval.*",
    r".*does not have many workers.*",
    r"Checkpoint directory .* exists and is not empty.*",  # a resume continues its own run dir on purpose
)


class _DropPhrases(logging.Filter):
    def __init__(self, phrases: tuple[str, ...]) -> None:
        super().__init__()
        self.phrases = phrases

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(phrase in message for phrase in self.phrases)


def quiet_libraries(verbose: bool = False) -> None:
    """Install the filters (once per process); ``verbose=True`` leaves every library line in."""
    if verbose:
        return
    for name, phrases in LOG_NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropPhrases) for f in logger.filters):
            logger.addFilter(_DropPhrases(phrases))
    for pattern in WARNING_NOISE:
        warnings.filterwarnings("ignore", message=pattern)
