"""Temperature scaling (Guo et al., 2017): one scalar T divides the logits so that confidence matches accuracy.

Fitted on the validation split after training (``calibrate=true``): it never changes which class is predicted
(argmax is invariant to T > 0), only how sure the model says it is, which is what a user thresholding
``prob_fake`` relies on.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar

LOG_T_BOUNDS = (-4.0, 4.0)  # T in [0.018, 55]: beyond that the logits carry no usable scale


def nll(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> float:
    return float(F.cross_entropy(logits.double() / temperature, targets))


def fit_temperature(logits: torch.Tensor | np.ndarray, targets: torch.Tensor | np.ndarray) -> float:
    """The T that minimises the negative log-likelihood of ``targets`` under ``softmax(logits / T)``; a bounded 1-D
    search over log T (convex in 1/T, so the minimum is unique)."""
    logits, targets = torch.as_tensor(logits).double(), torch.as_tensor(targets).long()
    if len(targets) == 0:
        return 1.0
    result = minimize_scalar(
        lambda log_t: nll(logits, targets, float(np.exp(log_t))), bounds=LOG_T_BOUNDS, method="bounded"
    )
    return float(np.exp(result.x))
