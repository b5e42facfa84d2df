"""The TFDS source: a prepared TensorFlow Datasets dataset (default ``celeb_a``)."""

from __future__ import annotations

import tfface  # noqa: F401  (selects tf_keras before TensorFlow is imported)

import tensorflow as tf

from tfface.config import DataConfig
from tfface.data.sources.base import (FaceSource, SourceError, _check_split, _keep_indices,
                                      _tf_square_resize)
from tfface.framing import CANONICAL_LANDMARKS

_TFDS_LANDMARK_KEYS = (
    ("lefteye_x", "lefteye_y"),
    ("righteye_x", "righteye_y"),
    ("nose_x", "nose_y"),
    ("leftmouth_x", "leftmouth_y"),
    ("rightmouth_x", "rightmouth_y"),
)


class TfdsSource(FaceSource):
    """A TensorFlow Datasets dataset with an ``image`` feature (default ``celeb_a``).

    It never downloads: the dataset must already be prepared in ``tfds_data_dir``
    (``tfds build celeb_a --data_dir DIR`` on a machine with internet access, then copy
    DIR). CelebA's ``landmarks`` feature (pixel positions in the 178x218 image) is used
    when present, otherwise :data:`CANONICAL_LANDMARKS`.

    Splits: train reads TFDS ``train``; eval is the first ``eval_count`` records of
    ``test`` (or ``validation``; a dataset with only ``train`` holds out its last
    ``eval_count`` records). The train stream is TFDS's file shuffle (seeded) plus a
    seeded ``shuffle`` buffer, repeated; resuming at ``start`` *skips* that many
    undecoded records (cheaper than decoding, but it still reads them).
    """

    name = "tfds"
    synthetic = False
    shuffle_buffer = 4096

    def __init__(self, data_cfg: DataConfig):
        super().__init__(data_cfg)
        try:
            # Imported here, not at the top: tensorflow_datasets takes 2.4 s to import
            # (measured on this machine) and only this source needs it.
            import tensorflow_datasets as tfds
        except ImportError as e:  # pragma: no cover - tfds is a dependency
            raise SourceError("the tfds source needs tensorflow-datasets installed") from e
        self._tfds = tfds
        name = data_cfg.tfds_name or "celeb_a"
        data_dir = data_cfg.tfds_data_dir
        where = data_dir or "the default TFDS folder (~/tensorflow_datasets)"
        how = (
            f"Prepare it on a machine with internet access with "
            f"`tfds build {name} --data_dir DIR` (for datasets that must be downloaded by "
            f"hand, put the files in a folder and add `--manual_dir FOLDER`), copy DIR here "
            f"and pass --tfds {name} with data.tfds_data_dir=DIR. tfface never downloads."
        )
        try:
            builder = tfds.builder(name, data_dir=data_dir)
        except Exception as e:  # DatasetNotFoundError and friends
            raise SourceError(
                f"TFDS dataset '{name}' is not available in {where}: {e}. {how}"
            ) from e
        if not builder.is_prepared():
            raise SourceError(
                f"TFDS dataset '{name}' is not prepared in {where} "
                f"(looked for {builder.data_dir}). {how}"
            )
        self.builder = builder
        self.tfds_name = name
        info = builder.info
        splits = dict(info.splits)
        if "image" not in info.features:
            raise SourceError(
                f"TFDS dataset '{name}' has no 'image' feature "
                f"(features: {', '.join(info.features.keys())})"
            )
        self._has_landmarks = "landmarks" in info.features and all(
            k in info.features["landmarks"].keys() for pair in _TFDS_LANDMARK_KEYS for k in pair
        )
        if "train" not in splits:
            raise SourceError(
                f"TFDS dataset '{name}' has no 'train' split (splits: {', '.join(splits)})"
            )
        n_eval = int(data_cfg.eval_count)
        if "test" in splits or "validation" in splits:
            eval_name = "test" if "test" in splits else "validation"
            n_eval = min(n_eval, splits[eval_name].num_examples)
            self._train_split, self._eval_split = "train", f"{eval_name}[:{n_eval}]"
            self._n_train = splits["train"].num_examples
        else:
            n_total = splits["train"].num_examples
            if n_total < 2:
                raise SourceError(f"TFDS dataset '{name}' has fewer than 2 train records")
            n_eval = max(1, min(n_eval, n_total // 10))
            self._train_split = f"train[:{n_total - n_eval}]"
            self._eval_split = f"train[{n_total - n_eval}:]"
            self._n_train = n_total - n_eval
        self._n_eval = n_eval

    def describe(self) -> str:
        return f"tfds '{self.tfds_name}' ({self._n_train} train, {self._n_eval} eval)"

    def num_examples(self, split: str) -> int | None:
        _check_split(split)
        return self._n_train if split == "train" else self._n_eval

    def _read(self, split: str, shuffle: bool) -> tf.data.Dataset:
        tfds = self._tfds
        read_config = tfds.ReadConfig(
            shuffle_seed=int(self.cfg.seed) if shuffle else None,
            shuffle_reshuffle_each_iteration=True,
        )
        return self.builder.as_dataset(
            split=split,
            shuffle_files=shuffle,
            read_config=read_config,
            decoders={"image": tfds.decode.SkipDecoding()},
        )

    def _process(self, index, example):
        img = tf.io.decode_image(example["image"], channels=3, expand_animations=False)
        out, offset, side = _tf_square_resize(img, self.image_size)
        if self._has_landmarks:
            lm = example["landmarks"]
            pts = tf.stack(
                [tf.stack([tf.cast(lm[kx], tf.float32), tf.cast(lm[ky], tf.float32)])
                 for kx, ky in _TFDS_LANDMARK_KEYS]
            )
            landmarks = (pts - offset) / side
        else:
            landmarks = tf.constant(CANONICAL_LANDMARKS)
        return {"image": out, "landmarks": landmarks, "index": index}

    def dataset(self, split: str, *, start: int = 0, keep=None) -> tf.data.Dataset:
        _check_split(split)
        if start < 0:
            raise SourceError(f"start must be >= 0, got {start}")
        if split == "train":
            shuffle = bool(self.cfg.shuffle_files)
            ds = self._read(self._train_split, shuffle)
            if shuffle:
                ds = ds.shuffle(self.shuffle_buffer, seed=int(self.cfg.seed),
                                reshuffle_each_iteration=True)
            ds = ds.repeat().skip(int(start))
            ds = tf.data.Dataset.zip((tf.data.Dataset.counter(start=int(start)), ds))
        else:
            ds = self._read(self._eval_split, False)
            ds = tf.data.Dataset.zip((tf.data.Dataset.counter(), ds))
        ds = _keep_indices(ds, keep)  # records are read in order; decoding is skipped
        return ds.map(self._process, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
