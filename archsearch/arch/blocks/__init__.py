"""Blocks by name: importing this package registers every built-in block."""

from archsearch.arch.blocks import context, conv, dblock, fusion, heads, pidnet, rep, resnet, timm_encoder  # noqa: F401
from archsearch.arch.blocks.registry import BLOCKS, BlockConfig, ComponentConfig, NormSettings, register_block

__all__ = ["BLOCKS", "BlockConfig", "ComponentConfig", "NormSettings", "register_block"]
