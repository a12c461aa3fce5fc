"""Segmentation datasets (Cityscapes layout, CamVid, VOC, built-in synthetic scenes) and transforms.

Every dataset yields ``(image float [3, H, W], mask int64 [H, W])`` with train ids
and ``ignore_index = 255``, and exposes ``num_classes`` and ``class_names``.
"""

from archsearch.data.augmentation import AugmentationConfig
from archsearch.data.base import PairTransform, Sample, SegmentationDataset
from archsearch.data.camvid import CAMVID_CLASS_NAMES, CAMVID_COLOURS, CamVidDataset, SegNetCamVidDataset
from archsearch.data.cityscapes import CITYSCAPES_CLASS_NAMES, CITYSCAPES_LABEL_IDS, CityscapesDataset
from archsearch.data.labels import IGNORE_INDEX
from archsearch.data.registry import DATASET_NAMES, build_dataset, default_synthetic_cache
from archsearch.data.scenes import Scene, render_scene
from archsearch.data.synthetic import SYNTHETIC_TRAIN_IDS, ensure_synthetic_cityscapes
from archsearch.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transforms, train_transforms
from archsearch.data.voc import VOC_CLASS_NAMES, VOCSegmentationDataset

__all__ = [
    "AugmentationConfig",
    "CAMVID_CLASS_NAMES",
    "CAMVID_COLOURS",
    "CITYSCAPES_CLASS_NAMES",
    "CITYSCAPES_LABEL_IDS",
    "DATASET_NAMES",
    "IGNORE_INDEX",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SYNTHETIC_TRAIN_IDS",
    "VOC_CLASS_NAMES",
    "CamVidDataset",
    "CityscapesDataset",
    "PairTransform",
    "Sample",
    "Scene",
    "SegNetCamVidDataset",
    "SegmentationDataset",
    "VOCSegmentationDataset",
    "build_dataset",
    "default_synthetic_cache",
    "ensure_synthetic_cityscapes",
    "eval_transforms",
    "render_scene",
    "train_transforms",
]
