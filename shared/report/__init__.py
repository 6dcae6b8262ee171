"""The batch pipeline's ``report.html``: a self-contained page (inline CSS and SVG, no script, no network) with
the data profile, raw vs latent comparison, cluster sizes, seasonality per cluster, loss curve, a 2-D projection
of the latent space and the per-cluster insights. ``write_report`` is the one entry point."""

from shared.report.writer import REPORT_HTML, write_report

__all__ = ["REPORT_HTML", "write_report"]
