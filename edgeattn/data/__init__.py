"""Data sets: builtin:digits, ImageFolder trees and .npz files, one split API for all."""

from edgeattn.data.imageset import ImageSet, normalize, preprocess
from edgeattn.data.sources import SPLITS, load_split

__all__ = ["SPLITS", "ImageSet", "load_split", "normalize", "preprocess"]
