"""Model helpers shared by the tests."""

import torch


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial statistics, so folding BN is really exercised."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            count = module.num_features
            module.running_mean.copy_(torch.randn(count, generator=generator) * 0.2)
            module.running_var.copy_(torch.rand(count, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(count, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(count, generator=generator) * 0.2)
