"""The rate-distortion trainer shared by every codec."""

from jaxcodec.train.trainer import TrainConfig, Trainer, lr_schedule

__all__ = ["TrainConfig", "Trainer", "lr_schedule"]
