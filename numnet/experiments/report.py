"""The report of a run: one self-contained HTML file, every table and figure embedded."""

import base64
import html
import pathlib

from numnet.atomic import write_text_atomically

from .results import NOT_REPRODUCED, REPRODUCED

REPORT_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; }
td.reproduced { color: #1a7f37; } td.not-reproduced { color: #b42318; font-weight: bold; }
figure { display: inline-block; margin: 0.5em; max-width: 32em; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; }
.skipped { color: #8a6d00; }
pre { background: #f6f6f6; padding: 0.5em; max-height: 20em; overflow: auto; }
"""


def write_report(results, path):
    """Write the results as one self-contained HTML file (figures embedded as base64 PNG data URIs).

    The file is written to a temporary file in the same folder and renamed over ``path``, so a reader never
    sees a half-written report.

    Parameters
    ----------
    results : sequence of ExperimentResult
    path : str or os.PathLike

    Returns
    -------
    pathlib.Path
    """
    path = pathlib.Path(path)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>numnet: the reference experiments</title>", f"<style>{REPORT_STYLE}</style></head><body>",
             "<h1>numnet: the reference experiments</h1>", _summary_table(results)]
    parts += [_section(result) for result in results]
    parts.append("</body></html>")
    write_text_atomically(path, "\n".join(parts))
    return path


def _summary_table(results):
    """One row per experiment: id, title, status and run time."""
    rows = ["<table><tr><th>Experiment</th><th>Status</th><th>Seconds</th></tr>"]
    for result in results:
        status = "skipped" if result.skipped else (REPRODUCED if result.reproduced else NOT_REPRODUCED)
        rows.append(f'<tr><td><a href="#{result.id}">{result.id}</a> {html.escape(result.title)}</td>'
                    f"<td>{status}</td><td>{result.seconds:.1f}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _section(result):
    """The HTML of one experiment: heading, table, figures, notes and log."""
    parts = [f'<h2 id="{result.id}">{result.id}. {html.escape(result.title)}</h2>']
    if result.skipped:
        parts.append(f'<p class="skipped">Skipped: {html.escape(result.skipped)}</p>')
    if result.rows:
        parts.append("<table><tr><th>Quantity</th><th>numnet</th><th>Reference</th><th>Verdict</th></tr>")
        for quantity, value, reference, verdict in result.rows:
            css = verdict.replace(" ", "-") if verdict in (REPRODUCED, NOT_REPRODUCED) else ""
            parts.append(f"<tr><td>{html.escape(quantity)}</td><td>{html.escape(value)}</td>"
                         f'<td>{html.escape(reference)}</td><td class="{css}">{html.escape(verdict)}</td></tr>')
        parts.append("</table>")
    for caption, figure_path in result.figures:
        encoded = base64.b64encode(pathlib.Path(figure_path).read_bytes()).decode("ascii")
        parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{encoded}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    if result.notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in result.notes) + "</ul>")
    if result.log:
        parts.append(f"<details><summary>Log ({len(result.log)} lines)</summary><pre>"
                     f"{html.escape(chr(10).join(result.log))}</pre></details>")
    return "\n".join(parts)
