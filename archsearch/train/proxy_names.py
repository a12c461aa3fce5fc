"""The zero-cost proxies a study may score (``proxies:``), named apart from their torch code so that a
study file is read without torch; ``train.proxies`` computes them."""

PROXY_NAMES = ("synflow", "naswot", "grad_norm", "snip")
