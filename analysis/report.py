"""One self-contained HTML page: the headline and provenance, warnings, the figures (embedded SVG), the fitted
laws, the frontiers, the backtest, the predict-then-verify check. Every number is shown with analysis.numbers'
three significant digits."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from analysis.files import write_atomically
from analysis.numbers import count, interval, number, with_interval
from analysis.provenance import provenance_line
from analysis.summary import loss_text, verification_line

CAPTIONS = {
    "error_vs_compute": "Error against training compute; each colour is a model size. Black: the fitted frontier "
                        "law, dashed beyond the data, with its bootstrap confidence band.",
    "isoflop": "IsoFLOP curves: final error against model size at each compute budget, the fitted parabolas "
               "(in log N) and their minima.",
    "error_vs_data": "Error against examples seen; each colour is a model size; dotted: the joint law.",
    "error_vs_params": "Final error against model size, coloured by examples seen, with the joint law.",
    "optimal_allocation": "Compute-optimal model size and data size against compute, by each approach.",
    "error_vs_train_examples": "The data axis: final error against training-set size (nested subsets) at one "
                               "compute budget; each colour is a model size; dotted: the data axis's joint law.",
    "predicted_vs_observed": "Predict, then verify: the frontier law fitted below a cut-off predicts each held-out "
                             "point; bars: the prediction interval of one run; dashed: predicted = observed.",
}
FEW_HELD_OUT = 5  # below this many held-out points a coverage is too coarse to compare with its nominal level
STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.2rem}td,th{border-bottom:1px solid #ccc;padding:.2rem .6rem;
text-align:right}th{background:#f3f3f3}td.text,th.text{text-align:left}figure{margin:1.5rem 0}
figure img{max-width:100%}figcaption{font-size:.9rem;color:#555}.warnings{background:#fff4e5;
border-left:4px solid #f0a030;padding:.5rem 1rem}code{background:#f3f3f3;padding:0 .2rem}
.headline{background:#eef5ff;border-left:4px solid #3070c0;padding:.5rem 1rem}.provenance{font-size:.85rem;
color:#555}.degenerate{color:#b00020;font-weight:600}"""


def write_report(record: dict[str, Any], figures: dict[str, list[Path]], out_dir: Path) -> Path:
    """Write out_dir/report.html from a study record and the figure files; return its path."""
    parts = [f"<h1>Scaling-law report: {_e(record['y'])}</h1>",
             "<div class='headline'><h2>Headline</h2>"
             + "".join(f"<p>{_e(line)}</p>" for line in record["headline"]["text"]) + "</div>",
             f"<p class='provenance'>{_e(provenance_line(record['provenance']))}</p>",
             f"<p>Table <code>{_e(record['table'])}</code>: {record['rows']} usable rows, {record['dropped_rows']} "
             "dropped because their status is not <code>completed</code>"
             + (f"; the rows where {' and '.join(f'<code>{_e(w)}</code>' for w in record['where'])} "
                f"({record['unselected_rows']} other rows left out)" if record.get("where") else "")
             + ".</p>"]
    if record["warnings"]:
        parts.append("<div class='warnings'><h2>Warnings</h2><ul>"
                     + "".join(f"<li>{_e(w)}</li>" for w in record["warnings"]) + "</ul></div>")
    parts.append("<h2>Figures</h2>")
    for name, paths in figures.items():
        image = next((path for path in paths if path.suffix == ".svg"), paths[0])
        mime = "image/svg+xml" if image.suffix == ".svg" else "image/png"
        data = base64.b64encode(image.read_bytes()).decode()
        links = " ".join(f"<a href='{_e(p.name)}'>{p.suffix[1:].upper()}</a>" for p in paths)
        parts.append(f"<figure><img alt='{_e(name)}' src='data:{mime};base64,{data}'>"
                     f"<figcaption>{_e(CAPTIONS.get(name, name))} ({links})</figcaption></figure>")
    parts.append("<h2>Fitted laws</h2>")
    parts.extend(_law(law) for law in record["laws"])
    if record["frontiers"]:
        parts.append("<h2>Compute-optimal frontier</h2>" + _frontiers(record))
    if record["backtest"]:
        parts.append("<h2>Backtest</h2>" + _backtest(record["backtest"], record["y"]))
    if record["verification"] or record["verification_note"]:
        parts.append("<h2>Predict, then verify</h2>" + _verification(record["verification"],
                                                                     record["verification_note"]))
    if record.get("data_axis"):
        parts.append("<h2>Data axis</h2>" + _data_axis(record["data_axis"], record["y"]))
    return _write_page(Path(out_dir), "Scaling-law report", parts)


def write_index(summary: dict[str, Any], out_dir: Path) -> Path:
    """Write out_dir/report.html linking the reports of each group (e.g. each class count); return its path."""
    rows = []
    for group in summary["groups"]:
        laws = ", ".join(f"{law['law']} ({law['num_points']} points{', degenerate' if law.get('degenerate') else ''})"
                         for law in group["laws"]) or "none"
        headline = " ".join(group["headline"]["text"]) if group.get("headline") else ""
        frontiers = "; ".join(f"{f['method']}: N_opt ∝ C^{number(f['n_exponent']['value'])}"
                              + (" (degenerate)" if f.get("degenerate") else "") for f in group["frontiers"]) or "none"
        zero = group["zero_errors"] or {}
        zeros = f"{zero['floored']} floored, {zero['dropped']} dropped" if zero.get("message") else "none"
        rows.append(f"<tr><td class='text'><a href='{_e(group['report'])}'>{_e(summary['by'])}={_e(group['value'])}"
                    f"</a></td><td>{group['rows']}</td><td>{_e(zeros)}</td><td class='text'>{_e(laws)}</td>"
                    f"<td class='text'>{_e(frontiers)}</td><td class='text'>{_e(headline)}</td>"
                    f"<td>{len(group['warnings'])}</td></tr>")
    why = (f"The table mixes values of <code>{_e(summary['by'])}</code>, so each has its own laws"
           + (" (chosen automatically; <code>--by none</code> for one report)" if summary["automatic"] else ""))
    head = "".join(f"<th class='text'>{h}</th>" for h in
                   ("report", "rows", "zero errors", "fitted laws", "frontiers", "headline", "warnings"))
    parts = [f"<h1>Scaling-law reports: {_e(summary['y'])} by {_e(summary['by'])}</h1>",
             f"<p>Table <code>{_e(summary['table'])}</code>. {why}.</p>",
             f"<table><tr>{head}</tr>{''.join(rows)}</table>"]
    if summary["rows_without_value"]:
        parts.append(f"<p class='warnings'>{summary['rows_without_value']} rows have no {_e(summary['by'])} "
                     "and are in no report.</p>")
    return _write_page(Path(out_dir), "Scaling-law reports", parts)


def _write_page(out_dir: Path, title: str, parts: list[str]) -> Path:
    """Write out_dir/report.html: the house style around `parts`; return its path."""
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
    path = out_dir / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, page)
    return path


def _law(law: dict[str, Any]) -> str:
    boot = law["bootstrap"]
    level = f"{boot['confidence']:.0%} interval" if boot else "interval"
    rows = [[name, number(v["value"]), interval(v), law["meanings"][name]] for name, v in law["params"].items()]
    rows += [[name, number(v["value"]), interval(v), v["meaning"]] for name, v in law["derived"].items()]
    resampled = (f"; bootstrap over {boot['resampled']}: {boot['converged']} of {boot['resamples']} refits "
                 "converged") if boot else ""
    notes = "".join(f"<li>{_e(w)}</li>" for w in law["warnings"])
    degenerate = (f"<p class='degenerate'>Degenerate fit, not a result: {_e('; '.join(law['degenerate']))}.</p>"
                  if law["degenerate"] else "")
    return (f"<h3>{_e(law['law'])}: <code>{_e(law['formula'])}</code></h3>{degenerate}<p>{_e(law['source'])}.</p>"
            f"<p>Fitted to {law['num_points']} {_e(law['points'])} points of {_e(law['y'])} against "
            f"{_e(', '.join(law['x']))}: {_e(loss_text(law))}, "
            f"{_e(law['status'])}, best of {law['starts']} starts{_e(resampled)}.</p>"
            + _table(["parameter", "value", level, "meaning"], rows)
            + (f"<ul class='warnings'>{notes}</ul>" if notes else ""))


def _frontiers(record: dict[str, Any]) -> str:
    rows = [[f["method"], with_interval(f["n_exponent"]), with_interval(f["d_exponent"]), str(f["optima"]),
             "degenerate: " + "; ".join(f["degenerate"]) if f["degenerate"] else "yes"]
            for f in record["frontiers"]]
    text = _table(["approach", "N_opt exponent [interval]", "D_opt exponent [interval]", "optima", "supported"],
                  rows)
    if record["flops_per_example"]:
        flops = record["flops_per_example"]
        text += (f"<p>Data size from compute: FLOPs per example = {number(flops['coefficient'])}·N^"
                 f"{number(flops['exponent'])} (fitted over the runs).</p>")
    if record["isoflop_budgets"]:
        text += _table(["budget (FLOPs)", "runs", "N_opt", "y at N_opt", "note"], [
            [number(b["budget"]), str(b["runs"]), number(b["n_opt"]), number(b["y_opt"]), b["problem"] or ""]
            for b in record["isoflop_budgets"]])
    return text


def _backtest(backtest: dict[str, Any], y: str) -> str:
    rows = [[str(r["rank"] or "-"), r["law"], r["points"], number(r["cutoff"]), str(r["train_points"]),
             str(r["test_points"]), number(r["rmse_log"]), r["note"] or ""] for r in backtest["rows"]]
    return (f"<p>Each law fitted where {_e(backtest['column'])} &le; {number(backtest['cutoff'])} (or, where that "
            f"leaves it unscored, the top quarter of its own points' range held out) and scored above it by the "
            f"RMSE of log {_e(y)} (Alabdulmohsin et al. 2022). A law without a rank could not be scored; its note "
            "says why.</p>"
            + _table(["rank", "law", "points", "cut-off", "fit points", "test points", "RMSE (log)", "note"], rows))


def _verification(checked: dict[str, Any] | None, note: str) -> str:
    """The held-out points, predicted against observed, and the coverage; or why the check was not done."""
    if checked is None:
        return f"<p class='degenerate'>Not done: {_e(note)}.</p>"
    level = f"{checked['confidence']:.0%}"
    rows = [[row["run"], number(row["position"]), number(row["observed"]), number(row["predicted"]),
             interval({"low": row["low"], "high": row["high"]}), "yes" if row["inside"] else "no"]
            for row in checked["rows"]]
    few = (f"<p class='degenerate'>Only {len(rows)} held-out point{'s' if len(rows) != 1 else ''}: too few for the "
           f"coverage to be compared with the nominal level (at least {FEW_HELD_OUT} wanted); hold out more with "
           "--verify-below.</p>" if len(rows) < FEW_HELD_OUT else "")
    notes = "".join(f"<li>{_e(w)}</li>" for w in checked["warnings"])
    return (f"<p>{_e(verification_line(checked))}. The cut-off is {_e(note)}. The law is refitted to the points below "
            f"the cut-off only (with its bootstrap) and predicts each point above it with the {level} interval "
            "in which one run's y should fall: the bootstrap refits' predictions plus the fit's log residuals "
            "(Davison and Hinkley 1997, section 6.3.3).</p>" + few
            + _table(["run", checked["column"], f"observed {checked['y']}", "predicted",
                      f"{level} prediction interval", "inside"], rows)
            + (f"<ul class='warnings'>{notes}</ul>" if notes else ""))


def _data_axis(axis: dict[str, Any], y: str) -> str:
    """How the table was split, the grid of final y by model size and training-set size, and the axis's law."""
    sizes = axis["train_examples"]
    cells = {(cell["params"], cell["train_examples"]): cell[y] for cell in axis["grid"]}
    rows = [[count(params)] + [number(cells[params, size]) if (params, size) in cells else "" for size in sizes]
            for params in sorted({cell["params"] for cell in axis["grid"]})]
    law = _law(axis["law"]) if axis["law"] else "<p class='degenerate'>No law fitted (see the warnings).</p>"
    return (f"<p>{_e(axis['split'][0].upper() + axis['split'][1:])}.</p>"
            + _table(["params", *(f"{y} at D = {count(size)}" for size in sizes)], rows) + law)


def _table(header: list[str], rows: list[list[str]]) -> str:
    text_columns = {0, len(header) - 1}
    head = "".join(f"<th class='{'text' if i in text_columns else ''}'>{_e(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td class='{'text' if i in text_columns else ''}'>{_e(c)}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _e(text: Any) -> str:
    return html.escape(str(text))
