"""Search spaces: a spec with choices, expressions and conditions in it, sampled into concrete specs."""
