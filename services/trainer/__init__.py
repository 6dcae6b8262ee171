"""The trainer service (``stableseg serve trainer``): versioned, measured, reproducible models.

Flow: ``training.requests`` (``stableseg retrain``, the admin API) and, with ``retrain_on_month_close``,
``months.closed`` -> :mod:`~services.trainer.triggers` (requests settle REQUEST_SETTLE_SECONDS, month closes debounce
``retrain_debounce_seconds``; whatever arrives during a training becomes ONE next run) -> the registry's training
lease (one training across replicas, ``trainer_lock_ttl_seconds``) -> :mod:`~services.trainer.snapshot` (one
consistent feature-store snapshot, canonical shop_id order, as-of month, rows) -> :mod:`~services.trainer.job`
(``fit_bundle`` + bundle save in a warm worker process, :mod:`~services.trainer.executor`) ->
:mod:`~shared.model.gates` (``gate_*``; a refused model is registered as rejected with the reason) ->
:mod:`~services.trainer.publication` (content-addressed artifact, candidate row, publish + ``current``) ->
``models.published`` (:mod:`~services.trainer.announce`) -> the trigger offsets are committed.

HTTP (``trainer_port``, default 8003): ``/healthz``, ``/readyz`` (kafka, redis, database), ``/metrics``
(``stableseg_trainer_training_duration_seconds``, ``..._last_success_timestamp_seconds``, ``..._training_rows``,
``..._noise_ratio{space}``, ``..._clusters{space}``, ``..._trainings_total{outcome}``, ``..._stage_seconds{stage}``,
``..._triggers_total{kind}``, ``..._training_in_progress``) and ``GET /v1/status`` (training now, pending triggers,
the last outcome with its stage timings).
"""
