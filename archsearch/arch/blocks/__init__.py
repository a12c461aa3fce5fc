"""Blocks by name: importing this package registers every built-in block."""

from archsearch.arch.blocks import (bisenet, context, conv, dblock, fcn_head, fusion, heads, pidnet, rep,  # noqa: F401
                                    resnet, timm_encoder)
from archsearch.arch.blocks.registry import BLOCKS, BlockConfig, ComponentConfig, NormSettings, register_block

__all__ = ["BLOCKS", "BlockConfig", "ComponentConfig", "NormSettings", "register_block"]
