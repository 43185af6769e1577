"""The pipeline's nodes: the pandas-iris starter's split and a 1-nearest-neighbour prediction."""

import numpy as np
import pandas as pd


def split_data(data: pd.DataFrame, parameters: dict):
    shuffled = data.sample(frac=1, random_state=parameters["random_state"]).reset_index(drop=True)
    rows = int(len(shuffled) * parameters["train_fraction"])
    target = parameters["target_column"]
    train, test = shuffled.iloc[:rows], shuffled.iloc[rows:].reset_index(drop=True)
    return train.drop(columns=target), test.drop(columns=target), train[target], test[target]


def make_predictions(X_train: pd.DataFrame, X_test: pd.DataFrame, y_train: pd.Series) -> pd.Series:
    distances = ((X_test.to_numpy()[:, None, :] - X_train.to_numpy()[None, :, :]) ** 2).sum(axis=2)
    nearest = distances.argmin(axis=1)
    return pd.Series(y_train.to_numpy()[nearest], name="prediction")


def report_accuracy(y_pred: pd.Series, y_test: pd.Series) -> dict:
    return {"accuracy": float((y_pred.to_numpy() == y_test.to_numpy()).mean()), "rows": int(len(y_test))}
