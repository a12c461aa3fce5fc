"""Export a trained trial for deployment: spec, deploy-form weights, a checked ONNX file and a model card.

``select_trial`` picks the trial (a number, or the best COMPLETE one, optionally under a
latency budget); ``export_trial`` writes the directory, atomically.
"""

from archsearch.export.directory import write_directory_atomic
from archsearch.export.onnx_check import OnnxCheck, write_checked_onnx
from archsearch.export.selection import TrialChoice, select_trial
from archsearch.export.writer import ExportedModel, default_export_dir, export_trial

__all__ = [
    "ExportedModel", "OnnxCheck", "TrialChoice", "default_export_dir", "export_trial",
    "select_trial", "write_checked_onnx", "write_directory_atomic",
]
