"""The accuracy plot's labels: placed so that no two print over each other."""

from __future__ import annotations

from edge_collab.evaluation.report import _label_offsets


def test_labels_of_points_close_together_are_stepped_apart():
    points = [(12.4, 45.7), (12.5, 46.0), (12.3, 45.9), (20.0, 45.8)]
    offsets = _label_offsets(points, x_span=30.0, y_span=60.0)
    close = offsets[:3]
    assert len({dy for _, dy in close}) == 3  # three labels at one spot: three heights
    assert offsets[3] == (6, 4)  # a point far enough away keeps the usual place


def test_labels_at_the_right_edge_go_to_the_left_of_their_point():
    offsets = _label_offsets([(1.0, 50.0), (29.0, 50.0)], x_span=30.0, y_span=60.0)
    assert offsets[0][0] > 0 and offsets[1][0] < 0
