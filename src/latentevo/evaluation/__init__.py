"""Chapter-5 evaluation: does an independent classifier recognise the images a search found for
"a photo of a <class>"? Classifiers behind one small interface, and the per-image predictions a
run logs (with the generator's ground truth where it has one). The classifiers are networks, in
`latentevo.models.classifier`."""

from .evaluate import Evaluation, build_evaluation

__all__ = ["Evaluation", "build_evaluation"]
