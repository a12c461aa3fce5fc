"""RegSeg's "RandAugment-reduced" operations (its RANDAUG_OPS_REDUCED) by name: the study's ``augmentation:``
section counts them without torch, and ``data.augment`` applies them."""

REDUCED_RANDAUGMENT_OPS = ("auto_contrast", "equalize", "rotate", "color", "contrast", "brightness", "sharpness")
