"""facemix: merge image-classification data sets into one label space and train / compare CNNs on them."""

import os

# Importing facemix never phones home: albumentations checks PyPI for updates on import unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
