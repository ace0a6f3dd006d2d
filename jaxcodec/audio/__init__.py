"""Neural audio codec parts: SEANet encoder/decoder, residual VQ, spectral losses, code priors."""
