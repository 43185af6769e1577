"""Kubeflow Pipelines v2: the housing-price pipeline of kfp_pipeline.py with vineyard's own API.

Instead of pickling files, each step hands pandas objects to vineyard with
`vineyard.csi.write(value, path)` and gets them back with `vineyard.csi.read(path)`: no
serialisation, the next step maps the same shared memory. Both calls find the vineyard socket the
driver publishes in the volume (/vineyard/vineyard.sock) by walking up from `path`, so every path
is below the mount point.

Compile:  python deploy/examples/kfp_pipeline_vineyard.py housing-vineyard.yaml
"""

import sys

from kfp import compiler, dsl, kubernetes

# The StorageClass `vctl deploy csidriver --clusters vineyard-system/vineyardd-sample` creates.
STORAGE_CLASS = "vineyard-system.vineyardd-sample.csi"
MOUNT_PATH = "/vineyard"
BASE_IMAGE = "python:3.11-slim"
PACKAGES = ["pandas==2.2.3", "numpy==1.26.4", "vineyard==0.24.2"]


@dsl.component(base_image=BASE_IMAGE, packages_to_install=PACKAGES)
def prepare_data(data_dir: str, rows: int, seed: int):
    """Generates a synthetic housing table and writes it to vineyard as <data_dir>/raw."""
    import numpy as np
    import pandas as pd
    import vineyard.csi

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
    vineyard.csi.write(frame, f"{data_dir}/raw")
    print(f"prepared {len(frame)} rows")


@dsl.component(base_image=BASE_IMAGE, packages_to_install=PACKAGES)
def preprocess_data(data_dir: str, seed: int):
    """Drops outliers and splits the table 80/20 into training and test sets."""
    import numpy as np
    import vineyard.csi

    frame = vineyard.csi.read(f"{data_dir}/raw")
    frame = frame[frame["area"] < 380]
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = int(len(frame) * 0.8)
    features, target = frame.drop(columns=["price"]), frame["price"]
    vineyard.csi.write(features.iloc[order[:cut]].reset_index(drop=True), f"{data_dir}/x_train")
    vineyard.csi.write(target.iloc[order[:cut]].reset_index(drop=True), f"{data_dir}/y_train")
    vineyard.csi.write(features.iloc[order[cut:]].reset_index(drop=True), f"{data_dir}/x_test")
    vineyard.csi.write(target.iloc[order[cut:]].reset_index(drop=True), f"{data_dir}/y_test")
    print(f"train {cut} rows, test {len(frame) - cut} rows")


@dsl.component(base_image=BASE_IMAGE, packages_to_install=PACKAGES)
def train_model(data_dir: str):
    """Fits a linear regression (least squares with an intercept) and writes its coefficients."""
    import numpy as np
    import pandas as pd
    import vineyard.csi

    features = vineyard.csi.read(f"{data_dir}/x_train")
    target = vineyard.csi.read(f"{data_dir}/y_train")
    design = np.column_stack([np.ones(len(features)), features.to_numpy(dtype=float)])
    coefficients, *_ = np.linalg.lstsq(design, np.asarray(target, dtype=float), rcond=None)
    model = pd.Series(coefficients, index=["intercept", *features.columns])
    vineyard.csi.write(model, f"{data_dir}/model")
    print(model.to_string())


@dsl.component(base_image=BASE_IMAGE, packages_to_install=PACKAGES)
def test_model(data_dir: str) -> float:
    """Scores the model on the test set; returns R²."""
    import numpy as np
    import vineyard.csi

    model = vineyard.csi.read(f"{data_dir}/model")
    features = vineyard.csi.read(f"{data_dir}/x_test")
    target = np.asarray(vineyard.csi.read(f"{data_dir}/y_test"), dtype=float)
    predicted = model["intercept"] + features[list(model.index[1:])].to_numpy(dtype=float) @ model.iloc[1:].to_numpy()
    rmse = float(np.sqrt(np.mean((predicted - target) ** 2)))
    r2 = float(1 - np.sum((predicted - target) ** 2) / np.sum((target - target.mean()) ** 2))
    print(f"RMSE {rmse:.0f}, R² {r2:.4f}")
    return r2


@dsl.pipeline(
    name="housing-prices-on-vineyard-csi-with-vineyard-api",
    description="Steps share pandas objects through vineyard.csi.write/read on a vineyard-csi volume.",
)
def housing_pipeline(rows: int = 200_000, seed: int = 7):
    volume = kubernetes.CreatePVC(
        pvc_name_suffix="-vineyard",
        access_modes=["ReadWriteOnce"],
        size="2Gi",
        storage_class_name=STORAGE_CLASS,
    )
    prepare = prepare_data(data_dir=MOUNT_PATH, rows=rows, seed=seed)
    preprocess = preprocess_data(data_dir=MOUNT_PATH, seed=seed).after(prepare)
    train = train_model(data_dir=MOUNT_PATH).after(preprocess)
    test = test_model(data_dir=MOUNT_PATH).after(train)
    for task in (prepare, preprocess, train, test):
        kubernetes.mount_pvc(task, pvc_name=volume.outputs["name"], mount_path=MOUNT_PATH)
        task.set_caching_options(False)
    kubernetes.DeletePVC(pvc_name=volume.outputs["name"]).after(test)


if __name__ == "__main__":
    compiler.Compiler().compile(
        housing_pipeline, package_path=sys.argv[1] if len(sys.argv) > 1 else "housing-vineyard.yaml"
    )
