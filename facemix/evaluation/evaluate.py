"""``facemix-evaluate``: the report set of a checkpoint on one split of its run, or on an external labelled tree.

Runs on ONE process over the whole split (no distributed sampler padding), reads the split from the run's own
manifest (a report never re-splits data) and the preprocessing from the checkpoint (never re-typed by the user).
Training's own report is ``evaluate_module`` on the split it already serves.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from facemix.data.manifest import write_manifest
from facemix.errors import FacemixConfigError
from facemix.evaluation.ensemble import FoldEnsemble, load_classifier
from facemix.evaluation.inference import predict
from facemix.evaluation.metrics import classification_report
from facemix.evaluation.report import Evaluation, ReportOptions, write_report_set
from facemix.evaluation.sets import EvaluationSet, external_set, split_set
from facemix.models.checkpoints import load_module
from facemix.reports.tables import markdown
from facemix.run.quiet import quiet_libraries
from facemix.run.rundir import CrossValidationDir, ReportFiles, RunDir, fresh_dir


def evaluate_module(
    module, data: EvaluationSet, files: ReportFiles, options: ReportOptions, run: RunDir | None = None
) -> Evaluation:
    """Predict ``data`` with a trained ``ClassifierModule`` and write the report set into ``files``."""
    predictions = predict(module, data.dataset, options.batch_size, options.num_workers, options.tta)
    return write_report_set(files, data, predictions, module.class_names, options, module, run)


def report_files(output_dir: str | Path | None, default: Path) -> ReportFiles:
    """``output_dir`` as given (it must not hold a report yet), else a new ``default`` (``-2``, ``-3``... when taken):
    an evaluation never replaces an earlier one."""
    if output_dir is None:
        return ReportFiles(fresh_dir(default))
    files = ReportFiles(Path(output_dir))
    if files.holds_report():
        raise FileExistsError(
            f"{output_dir} already holds an evaluation; choose another output_dir (or leave it unset)."
        )
    files.path.mkdir(parents=True, exist_ok=True)
    return files


def evaluate_checkpoint(
    ckpt: str | Path, split: str, options: ReportOptions, output_dir: str | Path | None = None
) -> Evaluation:
    """``ckpt`` on ``split`` of its run's manifest; default folder ``<run>/evaluation/<split>-<checkpoint>``."""
    module, run = load_module(ckpt), RunDir.of_checkpoint(ckpt)
    files = report_files(output_dir, run.evaluation(split, ckpt))
    return evaluate_module(module, split_set(module, run, split), files, options, run)


def _tree_name(data: DictConfig, sources: dict) -> str:
    return Path(str(data.get("root") or next(iter(sources.values()))["root"])).name or "tree"


def evaluate_external(
    ckpt: str | Path, data: DictConfig, options: ReportOptions, output_dir: str | Path | None = None
) -> Evaluation:
    """``ckpt`` on a labelled tree nobody trained on (``data=folder data.root=...``): the full report set plus the
    tree's manifest, default folder ``<run>/evaluation/external-<tree>-<checkpoint>``. ``ckpt`` may be a
    cross-validation dir: its fold ensemble is reported, and each fold model alone beside it (``members.md``)."""
    module = load_classifier(ckpt)
    sources = OmegaConf.to_container(data.sources, resolve=True)
    external = external_set(module, sources, data.get("scan_cache"))
    tree = _tree_name(data, sources)
    if isinstance(module, FoldEnsemble):
        files = report_files(output_dir, CrossValidationDir(ckpt).external_evaluation(tree))
        write_manifest(external.samples, files.manifest)
        evaluation = evaluate_module(module, external, files, replace(options, cam=False, tensorboard=False))
        files.members.write_text(members_table(module, external, evaluation, options))
        print(f"Each fold model alone on the same images:\n{files.members.read_text()}")
        return evaluation
    run = RunDir.of_checkpoint(ckpt)
    files = report_files(output_dir, run.external_evaluation(tree, ckpt))
    write_manifest(external.samples, files.manifest)
    return evaluate_module(module, external, files, options, run)


def members_table(ensemble: FoldEnsemble, data: EvaluationSet, evaluation: Evaluation, options) -> str:
    """Accuracy and macro F1 of each fold model alone and of their ensemble, on the same images."""
    rows = []
    for fold, member in enumerate(ensemble.members):
        probs = predict(member, data.dataset, options.batch_size, options.num_workers, options.tta).probabilities
        report = classification_report(data.targets, probs.argmax(axis=1), ensemble.class_names)
        rows.append([f"fold {fold}", f"{report['accuracy']:.3f}", f"{report['macro avg']['f1-score']:.3f}"])
    ours = evaluation.report
    rows.append(["ensemble (mean of probabilities)", f"{ours['accuracy']:.3f}", f"{ours['macro avg']['f1-score']:.3f}"])
    return markdown(["model", "accuracy", "macro F1"], rows)


def evaluate_from_config(cfg: DictConfig) -> Evaluation:
    """What ``facemix-evaluate`` does with its composed config."""
    quiet_libraries()
    options = ReportOptions.from_config(cfg, num_workers=cfg.num_workers)
    if cfg.get("data") is not None:
        return evaluate_external(cfg.ckpt, cfg.data, options, cfg.get("output_dir"))
    if CrossValidationDir(cfg.ckpt).is_cross_validation():
        raise FacemixConfigError(
            f"ckpt={cfg.ckpt} is a cross-validation: its folds held out different images, so it has no one split to "
            "evaluate (its out-of-fold report is there already). Evaluate its fold ensemble on a labelled tree: "
            f"facemix-evaluate ckpt={cfg.ckpt} data=folder data.root=<tree>."
        )
    return evaluate_checkpoint(cfg.ckpt, cfg.split, options, cfg.get("output_dir"))
