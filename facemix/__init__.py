"""facemix: merge image-classification data sets into one label space and train / compare CNNs on them."""

import os

# Importing facemix never phones home: albumentations checks PyPI for updates on import unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2  # noqa: E402

# OpenCV's thread pool does not survive fork: once any OpenCV call in a process has started it, DataLoader
# workers forked from that process hang on their first OpenCV call. facemix parallelises per-image work with
# processes (loader workers, pools), so OpenCV stays single-threaded in every facemix process.
cv2.setNumThreads(0)

__version__ = "0.3.0"
