"""Generative models trained as experiments (E-GAN, DCGAN, VAE), FaceGen's pixel-space GA and
its realness CNN, and their quality metrics. Entry points: `train.py` and `pixel_ga.py`."""
