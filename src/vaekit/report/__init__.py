"""What a person opens after training: ``report.html`` and the run's pictures."""

from vaekit.report.page import REPORT_FILE, render_report, write_report
from vaekit.report.pictures import RECONSTRUCTIONS_FILE, SAMPLES_FILE, write_run_pictures

__all__ = ["RECONSTRUCTIONS_FILE", "REPORT_FILE", "SAMPLES_FILE", "render_report", "write_report",
           "write_run_pictures"]
