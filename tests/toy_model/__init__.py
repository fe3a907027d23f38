"""A third model for the tests, outside ``pipeline/``: Conv1d + ReLU with flags of its own
(``--width``, and ``--dump-weights`` that adds an output folder). Registered in
:data:`pipeline.models.MODELS` by the test that uses it, never by the commands."""
