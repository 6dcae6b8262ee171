"""The assigner service: stable segment ids across retrains, ``segments.changes`` / ``segments.lineage``, query API.

``relabel`` (pure) decides; ``ledger`` and ``store`` make it durable; ``service`` runs the event loop; ``app`` and
``routes`` serve the API; ``main.run`` is ``stableseg serve assigner``.
"""
