"""The learned image codec: transforms, hyperprior and context (see model.py)."""
