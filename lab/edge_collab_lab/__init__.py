"""edge-collab's lab: the research tooling behind the learned verifier.

    collect    run collab on training items and record each divergence with
               the outcome of finishing the answer from either branch
    training   an MLP on those records, cross-validated, calibrated, exported to ONNX
    value      what taking the mentor's segment is worth, by a feature's quantiles
    cli        `edge-collab verifier collect|train|value` (registered as a plugin)

The runtime (`edge_collab`) never imports this package.
"""
