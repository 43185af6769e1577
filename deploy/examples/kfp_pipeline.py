"""Kubeflow Pipelines v2: a housing-price model whose steps share data through a vineyard volume.

Each step is a lightweight Python component. The run creates one PersistentVolumeClaim of the
vineyard-csi StorageClass, mounts it at /vineyard in every step, and deletes it at the end. The
steps exchange pandas objects as plain pickle files on that volume: the files live in the node's
shared-memory vineyard store, so the next step reads them at memory speed.

The StorageClass binds WaitForFirstConsumer and the volume is ReadWriteOnce: the first step picks
the node, and the volume's node affinity keeps every later step on it.

Compile:  python deploy/examples/kfp_pipeline.py housing.yaml   (needs kfp and kfp-kubernetes 2.x)
Run:      upload housing.yaml in the Kubeflow Pipelines UI, or kfp.Client().create_run_from_pipeline_package(...)
"""

import sys

from kfp import compiler, dsl, kubernetes

# The StorageClass `vctl deploy csidriver --clusters vineyard-system/vineyardd-sample` creates.
STORAGE_CLASS = "vineyard-system.vineyardd-sample.csi"
MOUNT_PATH = "/vineyard"
BASE_IMAGE = "python:3.11-slim"
PACKAGES = ["pandas==2.2.3", "numpy==1.26.4"]


@dsl.component(base_image=BASE_IMAGE, packages_to_install=PACKAGES)
def prepare_data(data_dir: str, rows: int, seed: int):
    """Generates a synthetic housing table and stores it as raw.pkl."""
    import os

    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "area": rng.uniform(30, 400, rows),
            "rooms": rng.integers(1, 9, rows),
            "age": rng.uniform(0, 120, rows),
            "distance_km": rng.uniform(0.2, 60, rows),
        }
    )
    frame["price"] = (
        2800 * frame["area"] + 12000 * frame["rooms"] - 650 * frame["age"] - 1900 * frame["distance_km"]
        + rng.normal(0, 25000, rows)
    )
    os.makedirs(data_dir, exist_ok=True)
    frame.to_pickle(os.path.join(data_dir, "raw.pkl"))
    print(f"prepared {len(frame)} rows")


@dsl.component(base_image=BASE_IMAGE, packages_to_install=PACKAGES)
def preprocess_data(data_dir: str, seed: int):
    """Drops outliers and splits the table 80/20 into training and test sets."""
    import os

    import numpy as np
    import pandas as pd

    frame = pd.read_pickle(os.path.join(data_dir, "raw.pkl"))
    frame = frame[frame["area"] < 380]
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = int(len(frame) * 0.8)
    features, target = frame.drop(columns=["price"]), frame["price"]
    features.iloc[order[:cut]].to_pickle(os.path.join(data_dir, "x_train.pkl"))
    target.iloc[order[:cut]].to_pickle(os.path.join(data_dir, "y_train.pkl"))
    features.iloc[order[cut:]].to_pickle(os.path.join(data_dir, "x_test.pkl"))
    target.iloc[order[cut:]].to_pickle(os.path.join(data_dir, "y_test.pkl"))
    print(f"train {cut} rows, test {len(frame) - cut} rows")


@dsl.component(base_image=BASE_IMAGE, packages_to_install=PACKAGES)
def train_model(data_dir: str):
    """Fits a linear regression (least squares with an intercept) and stores its coefficients."""
    import os

    import numpy as np
    import pandas as pd

    features = pd.read_pickle(os.path.join(data_dir, "x_train.pkl"))
    target = pd.read_pickle(os.path.join(data_dir, "y_train.pkl"))
    design = np.column_stack([np.ones(len(features)), features.to_numpy(dtype=float)])
    coefficients, *_ = np.linalg.lstsq(design, target.to_numpy(dtype=float), rcond=None)
    model = pd.Series(coefficients, index=["intercept", *features.columns])
    model.to_pickle(os.path.join(data_dir, "model.pkl"))
    print(model.to_string())


@dsl.component(base_image=BASE_IMAGE, packages_to_install=PACKAGES)
def test_model(data_dir: str) -> float:
    """Scores the model on the test set; returns R²."""
    import os

    import numpy as np
    import pandas as pd

    model = pd.read_pickle(os.path.join(data_dir, "model.pkl"))
    features = pd.read_pickle(os.path.join(data_dir, "x_test.pkl"))
    target = pd.read_pickle(os.path.join(data_dir, "y_test.pkl")).to_numpy(dtype=float)
    predicted = model["intercept"] + features[model.index[1:]].to_numpy(dtype=float) @ model.iloc[1:].to_numpy()
    rmse = float(np.sqrt(np.mean((predicted - target) ** 2)))
    r2 = float(1 - np.sum((predicted - target) ** 2) / np.sum((target - target.mean()) ** 2))
    print(f"RMSE {rmse:.0f}, R² {r2:.4f}")
    return r2


@dsl.pipeline(name="housing-prices-on-vineyard-csi", description="Steps share pandas pickles on a vineyard-csi volume.")
def housing_pipeline(rows: int = 200_000, seed: int = 7):
    volume = kubernetes.CreatePVC(
        pvc_name_suffix="-vineyard",
        access_modes=["ReadWriteOnce"],
        size="2Gi",
        storage_class_name=STORAGE_CLASS,
    )
    data_dir = f"{MOUNT_PATH}/housing"
    prepare = prepare_data(data_dir=data_dir, rows=rows, seed=seed)
    preprocess = preprocess_data(data_dir=data_dir, seed=seed).after(prepare)
    train = train_model(data_dir=data_dir).after(preprocess)
    test = test_model(data_dir=data_dir).after(train)
    for task in (prepare, preprocess, train, test):
        kubernetes.mount_pvc(task, pvc_name=volume.outputs["name"], mount_path=MOUNT_PATH)
        # The data lives on this run's volume, not in KFP's artifact store: never reuse a cached step.
        task.set_caching_options(False)
    kubernetes.DeletePVC(pvc_name=volume.outputs["name"]).after(test)


if __name__ == "__main__":
    compiler.Compiler().compile(housing_pipeline, package_path=sys.argv[1] if len(sys.argv) > 1 else "housing.yaml")
