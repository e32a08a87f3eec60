"""Data sets: builtin:digits and .npz in memory (`ImageSet`), ImageFolder trees and file lists streamed
from disk (`FileSet`); one split API for all."""

from edgeattn.data.config import DataConfig
from edgeattn.data.imageset import ImageSet, normalize, preprocess
from edgeattn.data.sources import SPLITS, load_split, load_unlabeled
from edgeattn.data.stream import FileSet

__all__ = [
    "SPLITS",
    "DataConfig",
    "FileSet",
    "ImageSet",
    "load_split",
    "load_unlabeled",
    "normalize",
    "preprocess",
]
