"""Training every model the project trains, through one driver (`driver.train`, behind
`python train.py`): the shapes-world models `make world` commits (the mini-CLIP, the classifier,
the conditional DCGAN; recipes in conf/gan/world/), the E-GAN and its DCGAN baseline, FaceGen's
VAE and realness CNN; their data and quality measures; and FaceGen's pixel-space GA
(`pixel_ga.py`). The networks themselves are in `latentevo.models`."""
