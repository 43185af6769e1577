"""A two-node Kedro pipeline: split_data, then make_predictions."""
