"""Segmentation datasets (Cityscapes layout, CamVid, VOC, built-in synthetic scenes) and transforms.

Every dataset yields ``(image float [3, H, W], mask int64 [H, W])`` with train ids
and ``ignore_index = 255``, and exposes ``num_classes`` and ``class_names``.

Names are loaded on first use, so that reading a study's data and augmentation sections
imports no torch.
"""

from archsearch.lazy import lazy_exports

_EXPORTS = {
    "AugmentationConfig": "archsearch.data.augmentation",
    "PairTransform": "archsearch.data.base",
    "Sample": "archsearch.data.base",
    "SegmentationDataset": "archsearch.data.base",
    "CAMVID_CLASS_NAMES": "archsearch.data.classes",
    "CAMVID_COLOURS": "archsearch.data.camvid",
    "CamVidDataset": "archsearch.data.camvid",
    "SegNetCamVidDataset": "archsearch.data.camvid",
    "CITYSCAPES_CLASS_NAMES": "archsearch.data.classes",
    "CITYSCAPES_LABEL_IDS": "archsearch.data.classes",
    "CityscapesDataset": "archsearch.data.cityscapes",
    "IGNORE_INDEX": "archsearch.data.labels",
    "DATASET_NAMES": "archsearch.data.registry",
    "build_dataset": "archsearch.data.registry",
    "default_synthetic_cache": "archsearch.data.registry",
    "Scene": "archsearch.data.scenes",
    "render_scene": "archsearch.data.scenes",
    "SYNTHETIC_TRAIN_IDS": "archsearch.data.synthetic",
    "ensure_synthetic_cityscapes": "archsearch.data.synthetic",
    "IMAGENET_MEAN": "archsearch.data.transforms",
    "IMAGENET_STD": "archsearch.data.transforms",
    "eval_transforms": "archsearch.data.transforms",
    "train_transforms": "archsearch.data.transforms",
    "VOC_CLASS_NAMES": "archsearch.data.classes",
    "VOCSegmentationDataset": "archsearch.data.voc",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
