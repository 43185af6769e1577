"""The project's one pipeline."""

from kedro.pipeline import Pipeline, node, pipeline

from iris_split.nodes import make_predictions, report_accuracy, split_data


def register_pipelines() -> dict[str, Pipeline]:
    default = pipeline([
        node(split_data, ["example_iris_data", "parameters"], ["X_train", "X_test", "y_train", "y_test"],
             name="split_data"),
        node(make_predictions, ["X_train", "X_test", "y_train"], "y_pred", name="make_predictions"),
        node(report_accuracy, ["y_pred", "y_test"], "metrics", name="report_accuracy"),
    ])
    return {"__default__": default}
