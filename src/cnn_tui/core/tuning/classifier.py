"""The bridge between Keras and scikit-learn: ``CnnClassifier``, a scikeras ``KerasClassifier``
whose network is built by the same code as ``cnn-tui train`` (``model.build_model``) and
trained by the same loop (``training.train``: its callbacks factory, stop, divergence check,
class weights, label smoothing, fine-tuning stages).

A search fits it once per trial (``core.tuning.trials``); it also works on its own in a user's
scikit-learn pipeline, on images shaped (n, size, size, channels)::

    clf = classifier_class()(model=build_network, image_size=28, channels=1, num_classes=10,
                             architecture="cnn", epochs=5)
    cross_val_score(clf, x, y, cv=3)

In a search, ``X`` is a column of row indices into the shared images (``data``), so folds
copy indices, never pixels, and ``clone`` shares the images (``SearchData``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnn_tui.core import backend
from cnn_tui.core.data.dataset import ImageSet
from cnn_tui.core.events import Emit, ignore
from cnn_tui.core.models.model import NetModel, build_model
from cnn_tui.core.models.optimizers import compile_model, one_hot_targets
from cnn_tui.core.params.files import ModelConfig
from cnn_tui.core.training import fit as training  # as a module: tests wrap training.train
from cnn_tui.core.tuning import fit_pool


@dataclass(frozen=True)
class TrialControl:
    """What a running fit reports to and is stopped by (in this process)."""

    stop: Any  # anything with is_set(): asked at every batch
    emit: Emit = ignore
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None
    validation: tuple[np.ndarray, np.ndarray] | None = None
    initial_epoch: int = 0
    history: dict[str, list[float]] | None = None
    start_model: str | None = None
    log_dir: str | None = None
    until: int | None = None  # the epoch this fit ends at (a hyperband round), before the planned epochs
    network_key: str | None = None  # reuse this process's network built for the same key (core.tuning.fit_pool)
    batches: int = 0  # batches an epoch (a schedule over the whole training needs them to compile)
    keep_network: bool = False  # a later round may train this network on: the pool keeps it built
    seed: int = 42


class SearchData:
    """The images a search draws from; ``clone`` shares it instead of copying."""

    def __init__(self, x: Any) -> None:
        self.x = x

    def __deepcopy__(self, memo: dict) -> SearchData:
        return self


def fit_config(params: dict[str, Any]) -> Any:
    """The hyper params of one fit, from the classifier's parameters (the grid point)."""
    return ModelConfig.from_dict({k: v for k, v in params.items() if isinstance(v, (int, float, str, bool))})


def build_network(image_size: int, channels: int, num_classes: int, **params: Any) -> Any:
    """scikeras's model function: the network ``train`` builds, from the hyper fields among the
    wrapper's parameters (scikeras passes them all, with its own; only ours are read)."""
    names = [str(i) for i in range(num_classes)]
    return build_model(fit_config(params), image_size=image_size, channels=channels, class_names=names).keras_model


def classifier_class() -> type:
    """``CnnClassifier``, defined on first use because scikeras imports Keras."""
    global _CLASSIFIER
    if _CLASSIFIER is not None:
        return _CLASSIFIER
    backend.load_keras()
    from scikeras.wrappers import BaseWrapper, KerasClassifier  # noqa: PLC0415 — scikeras imports Keras
    from sklearn.preprocessing import FunctionTransformer  # noqa: PLC0415 — scikit-learn: seconds to import

    class CnnClassifier(KerasClassifier):
        # Set by a search before ``fit`` (not a parameter, so ``clone`` leaves it behind).
        control_: TrialControl | None = None

        def __sklearn_tags__(self) -> Any:
            from sklearn.utils import ClassifierTags  # noqa: PLC0415 — scikit-learn: seconds to import

            tags = super().__sklearn_tags__()
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
            tags.target_tags.required = True
            return tags

        @property
        def feature_encoder(self) -> Any:
            data = getattr(self, "data", None)
            if data is None:  # images given directly
                return FunctionTransformer(lambda x: np.asarray(x, dtype="float32"))
            return FunctionTransformer(lambda ix: np.asarray(data.x[np.asarray(ix)[:, 0]], dtype="float32"))

        def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> CnnClassifier:
            # KerasClassifier.fit would turn ``class_weight`` into sample weights; here it is the
            # hyper field ("none" or "balanced") and ``training.train`` applies it, as for train.
            self.classes_ = None
            BaseWrapper.fit(self, X, y, sample_weight=sample_weight, **kwargs)
            return self

        def _build_keras_model(self) -> Any:
            control = self.control_
            if control is not None and control.network_key is not None:  # a search's fit: reuse the network
                return self._pooled_model(control)
            if control is not None and control.start_model is not None:  # a promoted trial goes on
                return NetModel.load(control.start_model, with_optimizer=True).keras_model
            return super()._build_keras_model()

        def _pooled_model(self, control: TrialControl) -> Any:
            def build() -> Any:
                model = KerasClassifier._build_keras_model(self)
                config = fit_config(self.get_params())
                compile_model(model, config, control.batches)
                fit_pool.build_compiled_state(model, one_hot=one_hot_targets(config))
                return model

            model = fit_pool.pool().take(control.network_key, build, control.seed, keep=control.keep_network)
            if control.start_model is not None:  # a promoted trial goes on from its state
                fit_pool.load_state(model, control.start_model)
            return model

        def _fit_keras_model(self, X: Any, y: Any, sample_weight: Any, warm_start: bool, epochs: int,
                             initial_epoch: int, **kwargs: Any) -> None:
            config = fit_config(self.get_params())
            control = self.control_
            classes = int(self.n_classes_)
            names = [str(i) for i in range(classes)]
            net = NetModel(self.model_, names, int(X.shape[1]), int(X.shape[3]), config)
            labels = np.asarray(y).reshape(len(X), -1)
            labels = labels.argmax(axis=1) if labels.shape[1] > 1 else labels[:, 0].astype(int)
            fit_set = ImageSet(X, labels, names, [], Path("."))
            validation = None
            if control is not None and control.validation is not None:
                vx, vy = control.validation
                validation = ImageSet(self.feature_encoder_.transform(vx), self.target_encoder_.transform(vy)
                                      .reshape(len(vy), -1)[:, 0].astype(int), names, [], Path("."))
            result = training.train(net, fit_set, config, validation=validation,
                                    emit=control.emit if control else ignore,
                                    stop=control.stop if control else None,
                                    on_epoch_end=control.on_epoch_end if control else None,
                                    initial_epoch=control.initial_epoch if control else 0,
                                    history=control.history if control else None,
                                    log_dir=control.log_dir if control else None,
                                    until=control.until if control else None,
                                    compiled=control is not None and control.network_key is not None)
            if result.out_of_memory and control is not None and control.network_key is not None:
                fit_pool.pool().networks.pop(control.network_key, None)  # compiled again for a smaller batch
            self.train_result_ = result
            self.history_ = dict(result.history)

    _CLASSIFIER = CnnClassifier
    return CnnClassifier


_CLASSIFIER: type | None = None
