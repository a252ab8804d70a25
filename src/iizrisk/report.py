"""Human summaries of a nightly run: Markdown and one self-contained HTML page.

The HTML embeds its plot as a PNG data URI and its style inline, so it can be
mailed or opened from a file share; it fits one screen. Texts follow the
configured language (de, fr, it, en); they live in the text catalogue
(:mod:`iizrisk._texts`, keys ``summary.*``), and counts are written with
:func:`swiss_number`.
"""

from __future__ import annotations

import base64
import html as _html
import io
from collections.abc import Mapping
from types import MappingProxyType

import pandas as pd

from ._html import page
from ._html import table as html_table
from ._texts import LANGUAGES, colon, load_locale, or_english, swiss_number, text

__all__ = ["BAND_NAMES", "figure_to_data_uri", "run_summary", "swiss_number"]

#: Band names per language (the data keep ``low`` / ``medium`` / ``high``), from the text catalogue.
BAND_NAMES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {lang: MappingProxyType(dict(load_locale(lang)["risk_bands"])) for lang in LANGUAGES})


def _t(key: str, lang: str, **fields) -> str:
    return text(f"summary.{key}", lang, **fields)


def _outcome_name(code, lang: str) -> str:
    """The predicted outcome in words (``revolving_door`` -> "Drehtür"), the code when the catalogue lacks it."""
    return str(load_locale(lang)["card"]["outcome_names"].get(str(code), code))


def _band(name: str, lang: str) -> str:
    return BAND_NAMES.get(lang, BAND_NAMES["en"]).get(str(name), str(name))


def figure_to_data_uri(fig) -> str:
    """A matplotlib figure as a deterministic PNG data URI (no timestamps, no software tag)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=144, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _risk_figure(scores: pd.DataFrame, lang: str, k: int, bands=(0.10, 0.25)):
    """The histogram of risks by band (:func:`iizrisk.plots.plot_risk_bands`, the one histogram), on a log
    axis, small cells hidden and said so; returns the figure and the note on what is hidden."""
    from matplotlib.figure import Figure  # no pyplot, no backend switch: notebooks keep theirs

    from .plots import plot_risk_bands

    fig = Figure(figsize=(6, 2.6))
    ax = plot_risk_bands(scores, bands=tuple(bands), bins=30, min_cell_size=k, log=True, language=lang,
                         ax=fig.subplots())
    note = next((t.get_text() for t in ax.texts if t.get_gid() == "footnote"), "")
    hidden = note.split("; ")[0] if note.count("; ") else ""
    return fig, hidden


def _suppressed_counts(table: pd.DataFrame, dim: str, k: int, lang: str = "en") -> pd.DataFrame:
    """Each count column of a per-``dim`` table with small cells hidden (shown as '·').

    Hidden cells hold fewer than k people, or are hidden so that a total cannot
    reveal such a cell (secondary suppression).
    """
    from .suppression import suppress_table

    out = table[[dim]].copy()
    for col in table.columns.drop(dim):
        safe = suppress_table(table[[dim, col]], col, dims=[dim], k=k).table[col]
        out[col] = ["·" if pd.isna(v) else swiss_number(v, lang) for v in safe]
    return out


_LIST_COUNTS = ["eligible", "left_off_recent_assessment", "left_off_reviewed", "below_min_band", "on_list",
                "new_on_list"]


def _decision_table(counts: pd.DataFrame | None, decisions, k: int, lang: str) -> list[list[str]]:
    """Rows ``institution, decision, n`` of the review counts of ``decisions``, small cells hidden."""
    from .reviews import decision_label

    if counts is None or not len(counts):
        return []
    c = counts[counts["decision"].isin(list(decisions))]
    if not len(c):
        return []
    t = c.assign(key=c["institution"].astype(str) + "\t" + c["decision"].astype(str))[["key", "n"]]
    safe = _suppressed_counts(t, "key", k, lang)
    return [[key.split("\t")[0], decision_label(key.split("\t")[1], lang), n] for key, n in safe.values.tolist()]


def _cell(value, lang: str) -> str:
    """A figure of a summary table: '·' when hidden, whole numbers with the thousands separator."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return "·"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    if isinstance(value, int | float):
        return swiss_number(int(value), lang)
    return str(value)


def _fairness_section(table: pd.DataFrame, rule, lang: str) -> tuple[str, str, list[str], list[list[str]]]:
    """Title, intro, headers and rows of the section on whom tonight's lists flag (one row per group that is
    not the reference; hidden figures as '·')."""
    from .fairness_rule import FairnessRule
    from .list_fairness import verdict_counts
    from .tables import value_name

    rule = rule if rule is not None else FairnessRule()
    loc = load_locale(lang)
    attrs, verdicts = loc["card"]["attributes"], loc["card"]["verdicts"]
    values = {"nationality_group": loc["nationality_group"],
              "disability": {"IV": text("list_fairness.iv", lang), "no_IV": text("list_fairness.no_iv", lang)}}
    judged = table[~table["is_reference"].astype(bool)] if len(table) else table
    intro = text("list_fairness.intro", lang, lo=f"{rule.min_ratio:g}", hi=f"{1 / rule.min_ratio:.3g}",
                 **verdict_counts(table)) if "flag_rate" in rule.ratio_metrics else text("list_fairness.off", lang)
    if "flag_rate" in rule.ratio_metrics and len(judged) and judged["hidden"].astype(bool).any():
        intro += " " + text("list_fairness.hidden", lang)  # why a row of '·' says "not judged"

    def group(attr: str, g) -> str:  # the nightly's own words for IV, else the audit's (F: Frauen, THIRD)
        return str(values.get(attr, {}).get(str(g)) or value_name("group", str(g), lang))

    def num(v, fmt: str, scale: float = 1.0) -> str:
        return "·" if v is None or pd.isna(v) else format(float(v) * scale, fmt)

    def count(v) -> str:
        return _cell(None if pd.isna(v) else int(v), lang)  # numpy and pandas integers with the separator

    rows = [[str(attrs.get(r.attribute, r.attribute)), group(r.attribute, r.group), group(r.attribute, r.reference),
             count(r.n), count(r.n_listed), num(r.flag_rate, ".2f", 100),
             f"{num(r.ratio, '.2f')} [{num(r.ratio_lo, '.2f')}–{num(r.ratio_hi, '.2f')}]",
             str(verdicts.get(r.verdict, r.verdict))]
            for r in judged.itertuples()]
    heads = [text(f"list_fairness.{c}", lang) for c in ("attribute", "group", "reference", "n", "listed",
                                                          "flag_rate", "ratio", "verdict")]
    return text("list_fairness.title", lang), intro, heads, rows


def _order_text(ranking: dict | None, lang: str) -> str:
    """The order of the lists in words: by risk, or by the benefit model's estimate (manifest ``ranking``)."""
    if not ranking or ranking.get("rank_by", "risk") == "risk":
        return _t("order_risk", lang)
    order = load_locale(lang)["card"]["orders"].get(ranking["rank_by"], ranking["rank_by"])
    return _t("order_benefit", lang, order=order, sha=str(ranking.get("benefit_model_sha256") or "")[:12])


def run_summary(manifest: dict, scores: pd.DataFrame, worklists, *, language: str = "de",
                min_cell_size: int = 5, review_counts: pd.DataFrame | None = None,
                summary_decisions=("data_error",), oversight: pd.DataFrame | None = None,
                bands=(0.10, 0.25), fairness: pd.DataFrame | None = None,
                fairness_rule=None) -> tuple[str, str]:
    """The Markdown and the self-contained HTML summary of one run.

    Counts of people leave the system here, so cells of fewer than
    ``min_cell_size`` people are suppressed (with secondary suppression), in
    the tables and in the histogram. Each list says how many of its places
    are used ("17 of 25"): a list holds nobody below its minimum risk band.
    ``review_counts`` (institution, decision, n: the reviews recorded since the
    last run) give the section for the data steward (``summary_decisions``)
    and the reviews by decision; ``oversight`` (the suppressed
    :attr:`iizrisk.oversight.Oversight.summary` of the last months) the
    section "does a human decide?"; ``fairness`` (the night's flag-rate ratios,
    :func:`iizrisk.list_fairness.list_fairness`, small cells hidden) judged by
    ``fairness_rule`` (a :class:`~iizrisk.fairness_rule.FairnessRule`) the
    section on whom the lists flag.
    """
    lang = or_english(language)
    k = int(min_cell_size)
    fig, hidden = _risk_figure(scores, lang, k, bands) if len(scores) else (None, "")
    wl = worklists.summary()  # every institution with people eligible, an empty list too ("0 of 25 places")
    places = wl["places"].tolist() if len(wl) else []
    if len(wl):
        wl = _suppressed_counts(wl[["institution", *_LIST_COUNTS]], "institution", k, lang)
        # a row's parts add up to its eligible people (with those beyond the places, none when the list is not
        # full): a hidden part would be eligible minus the others, so the total goes with it
        parts = wl[["left_off_recent_assessment", "left_off_reviewed", "below_min_band", "on_list"]]
        wl.loc[(parts == "·").any(axis=1).to_numpy(), "eligible"] = "·"
    wl["places_used"] = [text("review.places", lang, used=u, capacity=swiss_number(c, lang))
                         for u, c in zip(wl["on_list"], places, strict=True)] if len(wl) else []
    heads = [_t("inst", lang), _t("eligible", lang), _t("left_off", lang), text("review.left_off_reviewed", lang),
             text("review.below_min_band", lang), _t("on_list", lang), text("review.places_head", lang),
             _t("new", lang)]
    rows = wl[["institution", "eligible", "left_off_recent_assessment", "left_off_reviewed", "below_min_band",
               "on_list", "places_used", "new_on_list"]].values.tolist()
    steward = _decision_table(review_counts, summary_decisions, k, lang)
    all_decisions = sorted(set(review_counts["decision"])) if review_counts is not None and len(review_counts) else []
    reviewed = _decision_table(review_counts, all_decisions, k, lang)
    bands = {}
    if manifest.get("risk_bands"):
        rank = {b: i for i, b in enumerate(BAND_NAMES["en"])}  # low, medium, high; others after
        order = sorted(manifest["risk_bands"], key=lambda b: (rank.get(str(b), len(rank)), str(b)))
        bt = pd.DataFrame({"band": order, "n": [manifest["risk_bands"][b] for b in order]})
        bands = dict(_suppressed_counts(bt, "band", k, lang).values.tolist())
    r = manifest["rows"]
    facts = [
        (_t("as_of", lang), manifest["as_of"]),
        (_t("scored", lang), f"{swiss_number(manifest['persons_scored'], lang)} "
                             f"({_t('new_reg', lang)} {swiss_number(manifest['new_registrations'], lang)})"),
        (_t("rows", lang), f"{swiss_number(r['read'], lang)} "
                           f"({_t('quarantined', lang)} {swiss_number(r['quarantined'], lang)})"),
        (_t("bands", lang), ", ".join(f"{_band(b, lang)}{colon(lang)} {v}" for b, v in bands.items())),
        (_t("model", lang), f"{_outcome_name(manifest['model'].get('outcome'), lang)} · "
                            f"{manifest['model'].get('horizon_months')} m · "
                            f"sha256 {str(manifest['model'].get('sha256') or '')[:12]}"),
        (_t("order", lang), _order_text(manifest.get("ranking"), lang)),
    ]
    md = [f"# {_t('title', lang)} — {manifest['as_of']}", "", f"> {_t('notice', lang)}", ""]
    md += [f"- **{k}**{colon(lang)} {v}" for k, v in facts]
    md += ["", f"## {_t('lists', lang)}", "", "| " + " | ".join(heads) + " |",
           "|" + "---|" * len(heads)]
    md += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    dec_heads = [_t("inst", lang), text("table.columns.decision", lang), _t("persons", lang)]
    sections = [(text("review.data_errors", lang), dec_heads, steward, text("review.no_data_errors", lang)),
                (text("review.reviews_in", lang), dec_heads, reviewed, "–")]
    texts: dict[str, tuple[int, ...]] = {title: (0, 1) for title, *_ in sections}  # columns of words, by title
    ov_cols = ["institution", "month", "listed", "reviewed", "median_days_to_review", "overrides", "agreement_share",
               "repeatedly_listed_unreviewed"]
    if oversight is not None:
        from .tables import header

        ov_rows = [[_cell(v, lang) for v in row] for row in oversight[ov_cols].values.tolist()] \
            if len(oversight) else []
        sections.append((text("oversight.title", lang), [header(c, lang) for c in ov_cols], ov_rows,
                         text("oversight.none", lang)))
    intros: dict[str, str] = {}
    if fairness is not None:
        title, intro, f_heads, f_rows = _fairness_section(fairness, fairness_rule, lang)
        sections.append((title, f_heads, f_rows, text("list_fairness.none", lang)))
        texts[title] = (0, 1, 2, -1)  # attribute, group, reference group, verdict
        intros[title] = intro
    for title, heads_, table_rows, empty in sections:
        md += ["", f"## {title}", ""]
        if title in intros:
            md += [intros[title], ""]
        if table_rows:
            md += ["| " + " | ".join(heads_) + " |", "|" + "---|" * len(heads_)]
            md += ["| " + " | ".join(str(x) for x in row) + " |" for row in table_rows]
        else:
            md.append(empty)
    md += ["", f"· {_t('hidden', lang, k=k)}"]
    if hidden:  # the histogram's hidden cells, in words (the top of the list must not vanish unsaid)
        md += [f"· {_t('bands', lang)}{colon(lang)} {hidden}"]
    md_text = "\n".join(md) + "\n"

    img = figure_to_data_uri(fig) if fig is not None else ""
    esc = _html.escape
    table = html_table(heads, rows, numbers=True)  # counts and shares: right-aligned, each cell on one line
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(str(v))}</dd>" for k, v in facts)
    extra = ""
    for title, heads_, table_rows, empty in sections:
        extra += f"<h2>{esc(title)}</h2>" + (f"<p>{esc(intros[title])}</p>" if title in intros else "")
        extra += html_table(heads_, table_rows, numbers=True, text_columns=texts.get(title, (0,))) \
            if table_rows else f"<p>{esc(empty)}</p>"
    body = f"""<h1>{esc(_t('title', lang))} — {esc(manifest['as_of'])}</h1>
<p class="notice">{esc(_t('notice', lang))}</p>
<div class="grid"><div><dl>{dl}</dl></div><div>{f'<img alt="{esc(_t("bands", lang))}" src="{img}">' if img else ''}</div></div>
<h2>{esc(_t('lists', lang))}</h2>
{table}
{extra}
<p class="small">· {esc(_t('hidden', lang, k=k))}{(' · ' + esc(hidden)) if hidden else ''}</p>"""
    html = page(f"{_t('title', lang)} {manifest['as_of']}", body, lang)
    return md_text, html
