"""The segment explorer: read-only HTML pages under ``/ui`` served by the assigner (``ui_router``).

Pages: ``/ui`` (overview), ``/ui/segments/{segment_id}``, ``/ui/retailers/{shop_id}``, ``/ui/lineage``,
``/ui/models``, ``/ui/changes``, plus ``/ui/search``. Server-side Jinja2 templates; charts are Plotly figures drawn
in the browser by the vendored plotly.js, so the browser needs no network.
"""

from services.assigner.ui.routes import ui_router

__all__ = ["ui_router"]
