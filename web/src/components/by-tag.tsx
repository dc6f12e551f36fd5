// The dashboard's "By tag" view: a measure type's points per value of one of its tags (per
// endpoint of a web application, per host…) over the range: counts and percentiles per
// value, sortable; a box per value; the visits per IP; the counts per time slice.

import { useMemo, useState } from "preact/hooks";
import { useApi } from "../hooks";
import {
  DEFAULT_SORT, FIGURES, FIGURE_LABELS, IP_KEY, TOP_IPS, byTagStatistics, defaultGroupKey, defaultUniqueKey, groupedBoxplotPath,
  groupedStatsPath, nextSort, sliceCounts, sortRows, tagKeys, tagRows, taggedMeasures, tagsFilter, topBars, uniqueKeys, uniqueLabel,
  valueKey, visitsPerIpPath, type Sort, type SortKey, type TagRow,
} from "../lib/bytag";
import { formatCount, formatNumber } from "../lib/format";
import type { Timeslice } from "../lib/query";
import type { TimeRange } from "../lib/timerange";
import type { BoxplotAnswer, LatestPoint, SeriesData, StatsAnswer } from "../lib/types";
import { Boxplot, Sparkline } from "./small-charts";
import { Alert, Card, Loading } from "./ui";

/** How many boxes are drawn, in the table's order (one per endpoint can be hundreds). */
const MAX_BOXES = 20;

const NOTHING: ReadonlySet<string> = new Set();

export interface ByTagProps {
  experimentId: number;
  latest: LatestPoint[];
  range: Pick<TimeRange, "from" | "to">;
  timeslice: Timeslice;
  isStatic: boolean;
  tz: string;
  units: Record<string, string>;
}

/** The view, when some measure type's series carry tags; nothing otherwise. */
export function ByTagCard(props: ByTagProps) {
  const measures = useMemo(() => taggedMeasures(props.latest), [props.latest]);
  if (measures.length === 0) return null;
  return <ByTag {...props} measures={measures} />;
}

function ByTag(props: ByTagProps & { measures: string[] }) {
  const { experimentId, range } = props;
  // Choices stay while they still apply; a measure type without the chosen key falls back
  // to its own default.
  const [chosenMeasure, setMeasure] = useState<string | null>(null);
  const measure = chosenMeasure !== null && props.measures.includes(chosenMeasure) ? chosenMeasure : props.measures[0];
  const keys = useMemo(() => tagKeys(props.latest, measure), [props.latest, measure]);
  const [chosenKey, setKey] = useState<string | null>(null);
  const key = chosenKey !== null && keys.includes(chosenKey) ? chosenKey : defaultGroupKey(keys)!;
  const others = uniqueKeys(keys, key);
  const [chosenUnique, setUnique] = useState<string | null>(null);
  const uniqueKey = chosenUnique !== null && others.includes(chosenUnique) ? chosenUnique : defaultUniqueKey(keys, key);
  // The values left out belong to one measure type and key.
  const scope = `${measure}\u0000${key}`;
  const [hidden, setHidden] = useState<{ scope: string; values: ReadonlySet<string> }>({ scope, values: NOTHING });
  const excluded = hidden.scope === scope ? hidden.values : NOTHING;
  const [sort, setSort] = useState<Sort>(DEFAULT_SORT);

  const hasIp = keys.includes(IP_KEY);
  const countLabel = hasIp ? "Visits" : "Count";
  const unit = props.units[measure];
  const show = (value: string | null) => value ?? `(no ${key})`;

  const totals = useApi<StatsAnswer>(groupedStatsPath(experimentId, { measure, key, range, statistics: byTagStatistics(uniqueKey) }));
  const boxes = useApi<BoxplotAnswer>(groupedBoxplotPath(experimentId, { measure, key, range }));
  const slices = useApi<StatsAnswer>(
    props.timeslice
      ? groupedStatsPath(experimentId, {
          measure,
          key,
          range,
          statistics: ["count"],
          timeslice: props.timeslice,
          isStatic: props.isStatic,
          tz: props.tz,
          fill: "zero",
        })
      : null,
  );

  const rows = useMemo(() => (totals.data ? tagRows(totals.data.buckets, uniqueKey) : []), [totals.data, uniqueKey]);
  const values = useMemo(() => rows.map((r) => r.value).sort((a, b) => (a === null ? 1 : b === null ? -1 : a.localeCompare(b))), [rows]);
  const filter = tagsFilter(key, values, excluded);
  const keepsNone = filter !== null && filter[key].length === 0;
  const ips = useApi<StatsAnswer>(hasIp && !keepsNone ? visitsPerIpPath(experimentId, { measure, range, tags: filter }) : null);

  const shown = sortRows(rows.filter((r) => !excluded.has(valueKey(r.value))), sort);
  const lines = useMemo(() => (props.timeslice && slices.data ? sliceCounts(slices.data.buckets) : null), [props.timeslice, slices.data]);
  const order = new Map(shown.map((r, i) => [valueKey(r.value), i]));
  const drawn = (boxes.data?.boxes ?? [])
    .filter((b) => order.has(valueKey(b.group)))
    .sort((a, b) => order.get(valueKey(a.group))! - order.get(valueKey(b.group))!);
  const bars = ips.data ? topBars(ips.data.buckets, TOP_IPS) : null;

  const toggle = (value: string | null, keep: boolean) => {
    const next = new Set(excluded);
    if (keep) next.delete(valueKey(value));
    else next.add(valueKey(value));
    setHidden({ scope, values: next });
  };

  return (
    <Card title="By tag" id="by-tag">
      <p class="muted small">
        The points of a measure type over the range per value of one of its tags: for a web application, per endpoint. Click a column to sort.
      </p>
      <div class="toolbar">
        <div class="field inline">
          <label for="bytag-measure">Measure</label>
          <select id="bytag-measure" value={measure} onChange={(e) => setMeasure(e.currentTarget.value)}>
            {props.measures.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </div>
        <div class="field inline">
          <label for="bytag-key">Group by</label>
          <select id="bytag-key" value={key} onChange={(e) => setKey(e.currentTarget.value)}>
            {keys.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </div>
        {uniqueKey && (
          <div class="field inline">
            <label for="bytag-unique">Count unique</label>
            <select id="bytag-unique" value={uniqueKey} onChange={(e) => setUnique(e.currentTarget.value)}>
              {others.map((k) => (
                <option key={k} value={k}>
                  {k}
                </option>
              ))}
            </select>
          </div>
        )}
      </div>

      <Alert message={totals.error} />
      {totals.loading && !totals.data && <Loading />}
      {totals.data && rows.length === 0 && <p class="muted">No data in this range.</p>}
      {rows.length > 0 && (
        <>
          <fieldset class="checks value-filter">
            <legend>Values of {key} shown</legend>
            {values.map((v) => (
              <label key={valueKey(v)} class="check">
                <input type="checkbox" checked={!excluded.has(valueKey(v))} onChange={(e) => toggle(v, e.currentTarget.checked)} />
                {show(v)}
              </label>
            ))}
            <span class="filter-buttons">
              <button type="button" class="btn btn-small" disabled={excluded.size === 0} onClick={() => setHidden({ scope, values: NOTHING })}>
                Select all
              </button>
              <button
                type="button"
                class="btn btn-small"
                disabled={shown.length === 0}
                onClick={() => setHidden({ scope, values: new Set(values.map(valueKey)) })}
              >
                Clear
              </button>
            </span>
          </fieldset>
          {shown.length === 0 ? (
            <p class="muted">Choose the values to show.</p>
          ) : (
            <>
              {/* The headers are upper-cased: units there would read wrong (S is not s). */}
              {unit && <p class="muted small">Mean to max in {unit}.</p>}
              <ValueTable
                label={`${measure} by ${key}`}
                keyName={key}
                rows={shown}
                busy={totals.loading}
                countLabel={countLabel}
                uniqueKey={uniqueKey}
                sort={sort}
                onSort={setSort}
                lines={lines}
                timeslice={props.timeslice}
                show={show}
              />
            </>
          )}
          <Alert message={slices.error} />

          <section class="bytag-section" aria-labelledby="bytag-boxes-title">
            <h3 id="bytag-boxes-title">Distribution per {key}</h3>
            <Alert message={boxes.error} />
            {boxes.loading && !boxes.data && <Loading />}
            {drawn.length > 0 && <Boxplot boxes={drawn.slice(0, MAX_BOXES)} units={props.units} labelOf={(b) => show(b.group ?? null)} shared />}
            {drawn.length > MAX_BOXES && (
              <p class="muted small">
                The first {MAX_BOXES} of {drawn.length} values, in the table's order.
              </p>
            )}
          </section>
        </>
      )}

      {hasIp && rows.length > 0 && (
        <section class="bytag-section" aria-labelledby="visits-per-ip-title">
          <h3 id="visits-per-ip-title">Visits per IP</h3>
          {keepsNone && <p class="muted">Choose the values to show.</p>}
          <Alert message={ips.error} />
          {ips.loading && !ips.data && <Loading />}
          {bars && !keepsNone && bars.bars.length === 0 && <p class="muted">No visits in this range.</p>}
          {bars && !keepsNone && bars.bars.length > 0 && (
            <>
              <ol class="bar-list" aria-labelledby="visits-per-ip-title" aria-busy={ips.loading}>
                {bars.bars.map((b) => (
                  <li key={b.label}>
                    <span class="bar-label mono" title={b.label}>
                      {b.label}
                    </span>
                    <svg class="bar" width="100%" height="12" aria-hidden="true">
                      <rect width={`${b.percent}%`} height="12" rx="2" />
                    </svg>
                    <span class="num">{formatCount(b.count)}</span>
                  </li>
                ))}
              </ol>
              {bars.more > 0 && (
                <p class="muted small">
                  The {TOP_IPS} busiest; {formatCount(bars.more)} more IP{bars.more === 1 ? "" : "s"}.
                </p>
              )}
            </>
          )}
        </section>
      )}
    </Card>
  );
}

/** The per-value table; a click on a column's header sorts by it. */
function ValueTable(props: {
  label: string;
  keyName: string;
  rows: TagRow[];
  busy: boolean;
  countLabel: string;
  uniqueKey: string | null;
  sort: Sort;
  onSort: (sort: Sort) => void;
  /** The counts per time slice of each value, when the dashboard has a timeslice. */
  lines: Map<string, SeriesData> | null;
  timeslice: Timeslice;
  show: (value: string | null) => string;
}) {
  const { sort, show } = props;
  const header = (label: string, sortKey: SortKey, numeric = true) => {
    const active = sort.key === sortKey;
    return (
      <th scope="col" class={numeric ? "num" : undefined} aria-sort={active ? (sort.descending ? "descending" : "ascending") : undefined}>
        <button type="button" class="sort" onClick={() => props.onSort(nextSort(sort, sortKey))}>
          {label}
          <span aria-hidden="true">{active ? (sort.descending ? " ▼" : " ▲") : ""}</span>
        </button>
      </th>
    );
  };
  return (
    <div class="table-wrap tall">
      <table class="data bytag-table" aria-label={props.label} aria-busy={props.busy}>
        <thead>
          <tr>
            {header(props.keyName, "value", false)}
            {header(props.countLabel, "count")}
            {props.uniqueKey && header(uniqueLabel(props.uniqueKey), "unique")}
            {FIGURES.map((f) => header(FIGURE_LABELS[f], f))}
            {props.lines && <th scope="col">{`${props.countLabel} per ${props.timeslice}`}</th>}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((r) => {
            const line = props.lines?.get(valueKey(r.value));
            return (
              <tr key={valueKey(r.value)} data-value={r.value ?? ""}>
                <th scope="row" class="value-cell" title={show(r.value)}>
                  {show(r.value)}
                </th>
                <td class="num" data-stat="count">
                  {formatCount(r.count)}
                </td>
                {props.uniqueKey && (
                  <td class="num" data-stat="unique">
                    {formatCount(r.unique)}
                  </td>
                )}
                {FIGURES.map((f) => (
                  <td class="num" key={f} data-stat={f}>
                    {formatNumber(r[f])}
                  </td>
                ))}
                {props.lines && (
                  <td>
                    {line && line.values.length > 0 ? (
                      <Sparkline series={[line]} label={`${props.countLabel} of ${show(r.value)} per ${props.timeslice}`} />
                    ) : (
                      <span class="muted">—</span>
                    )}
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
