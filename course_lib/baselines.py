"""A classic reference point: TF-IDF features + logistic regression (scikit-learn).

Wrapped as a benchmark *variant* (``predict_logits``, ``size_mb``, ``num_parameters``), so it
sits in the same table as the transformers and shows what the big models must beat.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from . import data


@dataclass
class SklearnVariant:
    """A fitted scikit-learn text pipeline with ``predict_proba``, measured like any other variant."""

    pipeline: Pipeline
    name: str = "TF-IDF + logistic regression"

    def predict_logits(self, texts, batch_size: int = 64) -> np.ndarray:
        """Log-probabilities, shape (n, 2); their argmax and softmax equal the pipeline's own."""
        texts = data.check_texts(texts)
        if not texts:
            return np.zeros((0, 2), dtype=np.float32)
        proba = self.pipeline.predict_proba(texts)
        return np.log(np.clip(proba, 1e-12, 1.0)).astype(np.float32)

    def size_mb(self) -> float:
        """MB (10^6 bytes) of the fitted pipeline serialized in memory (vocabulary + weights)."""
        return len(pickle.dumps(self.pipeline)) / 1e6

    def num_parameters(self) -> int:
        """Learned numbers: the logistic-regression weights and bias plus the IDF vector."""
        lr = self.pipeline[-1]
        tfidf = self.pipeline[0]
        return int(lr.coef_.size + lr.intercept_.size + tfidf.idf_.size)


def tfidf_logreg(train_df: pd.DataFrame, seed: int = 0) -> SklearnVariant:
    """Fit TF-IDF (word 1–2-grams, sublinear tf) + class-balanced logistic regression on ``train_df``."""
    train_df = data.validate(train_df, "train_df")
    pipe = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True),
        LogisticRegression(C=10.0, class_weight="balanced", max_iter=2000, random_state=seed),
    )
    pipe.fit(train_df["text"].tolist(), train_df["label"].to_numpy())
    return SklearnVariant(pipe)


def top_features(variant: SklearnVariant, k: int = 10) -> pd.DataFrame:
    """The k n-grams that push hardest towards spam and towards ham (by logistic-regression weight)."""
    names = np.asarray(variant.pipeline[0].get_feature_names_out())
    coef = variant.pipeline[-1].coef_[0]
    order = np.argsort(coef)
    return pd.DataFrame({
        "spam n-gram": names[order[::-1][:k]], "spam weight": coef[order[::-1][:k]].round(2),
        "ham n-gram": names[order[:k]], "ham weight": coef[order[:k]].round(2),
    })
