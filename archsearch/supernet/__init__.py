"""One-shot search: a weight-sharing supernet over a space, exact subnet extraction, and its training."""
