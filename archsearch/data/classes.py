"""Each dataset's classes, in train-id order: plain data, importing no torch, so that checking a study
(sizes, the dry run's class count) knows them without loading a dataset module."""

from __future__ import annotations

CITYSCAPES_LABEL_IDS: dict[str, int] = {
    "road": 7, "sidewalk": 8, "building": 11, "wall": 12, "fence": 13, "pole": 17,
    "traffic light": 19, "traffic sign": 20, "vegetation": 21, "terrain": 22, "sky": 23,
    "person": 24, "rider": 25, "car": 26, "truck": 27, "bus": 28, "train": 31,
    "motorcycle": 32, "bicycle": 33,
}
"""Label id of each evaluated class, in train-id order (train id = position)."""

CITYSCAPES_CLASS_NAMES = tuple(CITYSCAPES_LABEL_IDS)

CAMVID_CLASS_NAMES = ("sky", "building", "pole", "road", "sidewalk", "tree", "sign symbol",
                      "fence", "car", "pedestrian", "bicyclist")

VOC_CLASS_NAMES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
                   "cat", "chair", "cow", "dining table", "dog", "horse", "motorbike", "person",
                   "potted plant", "sheep", "sofa", "train", "tv/monitor")
