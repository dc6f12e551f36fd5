// Chart legends that stay readable with many series: short labels, and a legend folded away
// when it would run to screens of lines.

import type { Tags } from "./types";

/** Above this many series a chart's legend starts folded; below, a line each reads fine. */
export const LEGEND_FOLD_ABOVE = 12;

export interface LegendSeries {
  measure: string;
  tags?: Tags | null;
}

/**
 * The tag keys, sorted, whose value is not the same in every series. A key missing from some
 * series but not others counts as differing: its absence tells those series apart.
 */
export function differingTagKeys(tagSets: (Tags | null | undefined)[]): string[] {
  const keys = new Set<string>();
  for (const tags of tagSets) for (const k of Object.keys(tags ?? {})) keys.add(k);
  return [...keys].sort().filter((k) => {
    const first = tagSets[0]?.[k];
    return tagSets.some((tags) => tags?.[k] !== first);
  });
}

/**
 * The legend label of each series. The measure name is left out when every series has the
 * same one (the card title already says it), and so are tags with one value throughout
 * (`source=demo` on every series tells the series nothing apart). A series left with
 * nothing to show is labelled by its measure name.
 */
export function legendLabels(series: LegendSeries[]): string[] {
  const oneMeasure = series.every((s) => s.measure === series[0].measure);
  const keys = differingTagKeys(series.map((s) => s.tags));
  return series.map((s) => {
    const tags = keys
      .filter((k) => s.tags?.[k] !== undefined)
      .map((k) => `${k}=${s.tags![k]}`)
      .join(", ");
    if (!tags) return s.measure;
    return oneMeasure ? tags : `${s.measure} {${tags}}`;
  });
}

/** Whether a chart of this many series starts with its legend folded. */
export function foldsLegend(seriesCount: number): boolean {
  return seriesCount > LEGEND_FOLD_ABOVE;
}
