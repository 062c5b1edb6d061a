"""Every metric facemix reports, computed here and nowhere else: the classification report (precision / recall /
F1 / support per class, accuracy, averages), how sure each number is (bootstrap intervals over images, paired
differences, spread over seeds), calibration (expected calibration error), the loss of a report and the per-source
breakdown.

All of them come from confusion matrices (``metrics_of_confusions``), so the report of one split and each of 2,000
bootstrap resamples are computed by the same lines.

A demo test split holds 10 ``fake`` images, so one image moves that class's F1 by ~0.05: a table without intervals
invites reading noise as a finding. The bootstrap here resamples *images* (with replacement) and recomputes every
metric on each resample in one vectorised pass (a confusion matrix per resample via ``bincount``), so 2,000
resamples of 14k predictions take well under a second. Percentile intervals: simple, seeded, and what the
scikit-learn / torchmetrics ``BootStrapper`` users know; BCa would correct skew at the edges (F1 near 0 or 1) but
needs a jackknife pass per metric, which costs N times more at the sizes users have.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95


def metric_names(class_names: Sequence[str]) -> list[str]:
    """Every metric an interval is reported for, in table order."""
    per_class = [f"{m} {c}" for c in class_names for m in ("precision", "recall", "f1")]
    return ["accuracy", "macro f1", *per_class]


def _rates(confusions: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support of a stack of confusion matrices ``[..., true, predicted]``;
    zero division gives 0 (as scikit-learn's ``zero_division=0``)."""
    confusions = confusions.astype(np.float64)
    tp = np.diagonal(confusions, axis1=-2, axis2=-1)
    support, predicted = confusions.sum(axis=-1), confusions.sum(axis=-2)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"tp": tp, "support": support, "precision": precision, "recall": recall, "f1": f1}


def metrics_of_confusions(confusions: np.ndarray, class_names: Sequence[str]) -> dict[str, np.ndarray]:
    """Accuracy, macro F1 and per-class precision / recall / F1 of a stack of confusion matrices."""
    r = _rates(confusions)
    total = r["support"].sum(axis=-1)
    out = {
        "accuracy": np.divide(r["tp"].sum(axis=-1), total, out=np.zeros_like(total), where=total > 0),
        "macro f1": r["f1"].mean(axis=-1),
    }
    for i, c in enumerate(class_names):
        out[f"precision {c}"], out[f"recall {c}"], out[f"f1 {c}"] = (
            r[m][..., i] for m in ("precision", "recall", "f1")
        )
    return out


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], k: int) -> np.ndarray:
    """``[true, predicted]`` counts."""
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return confusion


_AVERAGED = (("precision", "precision"), ("recall", "recall"), ("f1-score", "f1"))


def classification_report(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> dict:
    """The same numbers as scikit-learn's ``classification_report(output_dict=True)`` (zero division -> 0), plus
    the confusion matrix; JSON-ready."""
    confusion = confusion_matrix(y_true, y_pred, len(class_names))
    r = _rates(confusion)
    total = int(r["support"].sum())
    weights = r["support"] / total if total else np.zeros(len(class_names))
    report: dict = {
        name: {
            "precision": float(r["precision"][i]),
            "recall": float(r["recall"][i]),
            "f1-score": float(r["f1"][i]),
            "support": int(r["support"][i]),
        }
        for i, name in enumerate(class_names)
    }
    report["accuracy"] = float(r["tp"].sum() / total) if total else 0.0
    report["macro avg"] = {name: float(r[m].mean()) for name, m in _AVERAGED} | {"support": total}
    report["weighted avg"] = {name: float((r[m] * weights).sum()) for name, m in _AVERAGED} | {"support": total}
    report["confusion_matrix"] = confusion.tolist()
    return report


def mean_nll(probs: np.ndarray, y_true: Sequence[int]) -> float:
    """Mean negative log-likelihood of the true class: a report's ``loss``."""
    y_true = np.asarray(y_true, dtype=np.int64)
    if not len(y_true):
        return float("nan")
    return float(-np.log(np.clip(np.asarray(probs)[np.arange(len(y_true)), y_true], 1e-12, None)).mean())


def _confusions(y_true: np.ndarray, y_pred: np.ndarray, k: int, index: np.ndarray) -> np.ndarray:
    """Confusion matrices of the resamples ``index`` [resamples, n] in one ``bincount``."""
    cells = (y_true[index] * k + y_pred[index]) + (np.arange(len(index))[:, None] * k * k)
    return np.bincount(cells.ravel(), minlength=len(index) * k * k).reshape(len(index), k, k)


def _resample_index(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _point_and_resampled(y_true: np.ndarray, y_pred, class_names: Sequence[str], index: np.ndarray) -> tuple:
    """Metrics on all images, and on each resample ``index`` [resamples, n]."""
    y_pred, k = np.asarray(y_pred, dtype=np.int64), len(class_names)
    point = metrics_of_confusions(_confusions(y_true, y_pred, k, np.arange(len(y_true))[None]), class_names)
    return point, metrics_of_confusions(_confusions(y_true, y_pred, k, index), class_names)


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_intervals(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    class_names: Sequence[str],
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Percentile bootstrap interval of every metric over the images: ``{metric: {value, low, high}}``."""
    y_true = np.asarray(y_true, dtype=np.int64)
    if len(y_true) == 0:
        return {}
    index = _resample_index(len(y_true), resamples, seed)
    point, stats = _point_and_resampled(y_true, y_pred, class_names, index)
    return {
        name: {"value": float(point[name][0]), **dict(zip(("low", "high"), _interval(stats[name], confidence)))}
        for name in metric_names(class_names)
    }


def paired_bootstrap(
    y_true: Sequence[int],
    pred_a: Sequence[int],
    pred_b: Sequence[int],
    class_names: Sequence[str],
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> dict[str, dict]:
    """Interval of ``metric(b) - metric(a)`` when both predicted the same images: each resample draws one set of
    images for both models, so the shared difficulty of the images cancels and small real differences show.
    ``{metric: {difference, low, high, excludes_zero}}``."""
    y_true = np.asarray(y_true, dtype=np.int64)
    if len(y_true) == 0:
        return {}
    index = _resample_index(len(y_true), resamples, seed)  # one set of images per resample, for both models
    point_a, stats_a = _point_and_resampled(y_true, pred_a, class_names, index)
    point_b, stats_b = _point_and_resampled(y_true, pred_b, class_names, index)
    out = {}
    for name in metric_names(class_names):
        low, high = _interval(stats_b[name] - stats_a[name], confidence)
        out[name] = {
            "difference": float(point_b[name][0] - point_a[name][0]),
            "low": low,
            "high": high,
            "excludes_zero": bool(low > 0 or high < 0),
        }
    return out


def seed_spread(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation (ddof=1; 0 for one seed) of one metric over seeds."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "seeds": len(v)}


def calibration(probs: np.ndarray, y_true: Sequence[int], bins: int = 15) -> dict:
    """Expected calibration error of the top-class confidence (equal-width bins, weighted by their share of
    images) and the per-bin table a reliability diagram draws."""
    probs, y_true = np.asarray(probs, dtype=np.float64), np.asarray(y_true)
    confidence = probs.max(axis=1) if len(probs) else np.zeros(0)
    correct = (probs.argmax(axis=1) == y_true) if len(probs) else np.zeros(0, bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        count = int(mask.sum())
        conf = float(confidence[mask].mean()) if count else 0.0
        acc = float(correct[mask].mean()) if count else 0.0
        ece += count / max(1, len(probs)) * abs(acc - conf)
        table.append(
            {"low": float(edges[b]), "high": float(edges[b + 1]), "images": count, "confidence": conf, "accuracy": acc}
        )
    return {"ece": float(ece), "bins": table}


def per_source_breakdown(
    sources: Sequence[str], y_true, y_pred, class_names: Sequence[str], resamples: int = 0
) -> dict:
    """Accuracy and macro F1 per source, and per (source, class): exposes a model that only works on one source.

    A source's macro F1 averages the classes that source has (its true labels): the mask set holds no fakes, so
    its images called fake count as errors of its own classes, and the absent class's F1 of 0 does not drag the
    average down. With ``resamples``, 95 % percentile bootstrap intervals over the source's images."""
    sources, y_true, y_pred = np.asarray(sources), np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, np.int64)
    k = len(class_names)
    out: dict = {}
    for source in sorted(set(sources.tolist())):
        idx = np.flatnonzero(sources == source)
        t, p = y_true[idx], y_pred[idx]
        present = sorted(set(t.tolist()))
        report = classification_report(t, p, class_names)
        entry = {
            "images": int(len(idx)),
            "classes_present": [class_names[c] for c in present],
            "accuracy": report["accuracy"],
            "macro_f1": float(np.mean([report[class_names[c]]["f1-score"] for c in present])),
            "classes": {
                class_names[c]: {m: report[class_names[c]][m] for m in ("precision", "recall", "f1-score", "support")}
                for c in present
            },
        }
        if resamples > 0 and len(idx):
            f1 = _rates(_confusions(t, p, k, _resample_index(len(idx), resamples, seed=0)))["f1"]
            entry["macro_f1_interval"] = _interval(f1[:, present].mean(axis=1), DEFAULT_CONFIDENCE)
            for c in present:
                entry["classes"][class_names[c]]["f1_interval"] = _interval(f1[:, c], DEFAULT_CONFIDENCE)
        out[source] = entry
    return out
