"""facemix's Hydra configs. The folder stays at the top of the repository and ships as ``facemix.conf``."""
