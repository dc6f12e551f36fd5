// An experiment's dashboard: a chart per measure type, range statistics, time slices, a
// boxplot, the points per tag value, the sources it is fetched from, its alert rules, live
// updates and exports. A link may name the range to open on (`?from=…&to=…`, RFC 3339), as
// alert notifications do.

import { useEffect, useMemo, useState } from "preact/hooks";
import { AlertRulesCard, useAlertRules, useRuleHistories } from "../components/alerts";
import { ByTagCard } from "../components/by-tag";
import { Chart, LiveBus } from "../components/chart";
import { Boxplot } from "../components/small-charts";
import { SourcesCard } from "../components/sources";
import { Alert, Card, Empty, Link, Loading, Notice } from "../components/ui";
import { useApi, useTitle } from "../hooks";
import { chartRules } from "../lib/alerts";
import { api, errorMessage, isAbort } from "../lib/api";
import { browserTimeZone, formatCount, formatNumber, formatTime, zoneName } from "../lib/format";
import {
  STATISTICS, TIMESLICES, boxplotPath, dynamicAllowed, exportPath, latestPath, statsPath, streamPath, type Timeslice,
} from "../lib/query";
import { latestByType, newestTimestamp } from "../lib/shape";
import {
  PRESETS, customRange, defaultRange, fromDatetimeLocal, latestWeek, pan, presetRange, rangeFromSearch, toDatetimeLocal, zoom, type TimeRange,
} from "../lib/timerange";
import type { BoxplotAnswer, Bucket, Experiment, LatestAnswer, LiveMeasure, StatsAnswer } from "../lib/types";
import { useUnits } from "./overview";

const STAT_LABELS: Record<string, string> = {
  count: "Count", mean: "Mean", min: "Min", max: "Max", p50: "p50", p90: "p90", p99: "p99",
};

/** The column headers of a statistics table, after its first column. */
function StatHeaders() {
  return (
    <>
      {STATISTICS.map((s) => (
        <th scope="col" class="num" key={s}>
          {STAT_LABELS[s]}
        </th>
      ))}
    </>
  );
}

/** A bucket's statistics as table cells (a missing bucket counts 0 points). */
function StatCells({ bucket }: { bucket: Bucket | undefined }) {
  return (
    <>
      {STATISTICS.map((s) => (
        <td class="num" key={s} data-stat={s}>
          {s === "count" ? formatCount(Number(bucket?.count ?? 0)) : formatNumber(bucket?.[s] as number | null)}
        </td>
      ))}
    </>
  );
}

interface StatsState {
  loading: boolean;
  error: string | null;
  rows: { measure: string; buckets: Bucket[] }[];
}

/** Statistics of every measure type over the range (one bucket each, or per time slice). */
function useStats(experimentId: number, measures: string[], range: TimeRange | null, timeslice: Timeslice, isStatic: boolean, tz: string): StatsState {
  const [state, setState] = useState<StatsState>({ loading: true, error: null, rows: [] });
  const key = measures.join("\u0000");
  useEffect(() => {
    if (!range || measures.length === 0) {
      setState({ loading: false, error: null, rows: [] });
      return;
    }
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true, error: null }));
    Promise.all(
      measures.map((measure) =>
        api
          .get<StatsAnswer>(statsPath(experimentId, { measure, range, timeslice, isStatic, tz }), undefined, controller.signal)
          .then((answer) => ({ measure, buckets: answer.buckets })),
      ),
    ).then(
      (rows) => {
        if (!controller.signal.aborted) setState({ loading: false, error: null, rows });
      },
      (err) => {
        if (isAbort(err) || controller.signal.aborted) return;
        setState({ loading: false, error: errorMessage(err), rows: [] });
      },
    );
    return () => controller.abort();
  }, [experimentId, key, range?.from, range?.to, timeslice, isStatic, tz]);
  return state;
}

export function DashboardPage({ experimentId }: { experimentId: number }) {
  const experiment = useApi<Experiment>(`/experiments/${experimentId}`);
  const latest = useApi<LatestAnswer>(latestPath(experimentId));
  useTitle(experiment.data?.name ?? "Dashboard");
  const units = useUnits();
  const tz = useMemo(browserTimeZone, []);

  const types = useMemo(() => (latest.data ? latestByType(latest.data.latest) : []), [latest.data]);
  const measures = useMemo(() => types.map((t) => t.measure), [types]);
  const newest = useMemo(() => (latest.data ? newestTimestamp(latest.data.latest) : null), [latest.data]);

  const [range, setRange] = useState<TimeRange | null>(null);
  const [picked, setPicked] = useState<TimeRange | null>(null);
  const [timeslice, setTimeslice] = useState<Timeslice>("");
  const [isStatic, setIsStatic] = useState(true);
  const [live, setLive] = useState(false);
  // Read once: the range the page was opened on; choosing another does not rewrite the URL.
  const [linked] = useState(() => rangeFromSearch(location.search));

  // The first range: the linked one, else the last week, or the week ending at the latest
  // point when older.
  useEffect(() => {
    if (latest.data && range === null) {
      const first = linked ?? defaultRange(newest);
      setRange(first);
      setPicked(first);
    }
  }, [latest.data]);

  const choose = (next: TimeRange) => {
    setRange(next);
    setPicked(next);
  };

  const totals = useStats(experimentId, measures, range, "", true, tz);
  const sliced = useStats(experimentId, timeslice ? measures : [], range, timeslice, isStatic, tz);
  const boxplot = useApi<BoxplotAnswer>(range && measures.length ? boxplotPath(experimentId, range) : null);

  const rules = useAlertRules(experimentId);
  const histories = useRuleHistories(experimentId, rules.data);
  // Recomputed at each refresh of the rules, so that a firing alert's shading reaches now.
  const ruleOverlays = useMemo(
    () => (range && rules.data ? chartRules(rules.data, histories, range, Date.now()) : null),
    [rules.data, histories, range?.from, range?.to],
  );

  const totalCount = totals.rows.reduce((n, r) => n + Number(r.buckets[0]?.count ?? 0), 0);
  const rangeEmpty = !totals.loading && !totals.error && totals.rows.length > 0 && totalCount === 0;

  // Live updates: Server-Sent Events of newly stored measures, closed when off or on leaving.
  const bus = useMemo(() => new LiveBus(), []);
  const [liveState, setLiveState] = useState<{ status: "off" | "connecting" | "open" | "retrying" | "closed"; received: number; note?: string }>({
    status: "off",
    received: 0,
  });
  useEffect(() => {
    if (!live) {
      setLiveState({ status: "off", received: 0 });
      return;
    }
    const source = new EventSource(api.url(streamPath(experimentId)));
    setLiveState({ status: "connecting", received: 0 });
    source.onopen = () => setLiveState((s) => ({ ...s, status: "open" }));
    source.addEventListener("measure", (event) => {
      try {
        const measure = JSON.parse((event as MessageEvent<string>).data) as LiveMeasure;
        bus.emit(measure);
        setLiveState((s) => ({ ...s, status: "open", received: s.received + 1 }));
      } catch {
        setLiveState((s) => ({ ...s, note: "A live event could not be read." }));
      }
    });
    source.addEventListener("lagged", () =>
      setLiveState((s) => ({ ...s, note: "The live view fell behind and missed some points: change the range to reload them." })),
    );
    // The server ends the stream when its reader may no longer read (signed out, removed
    // from the experiment): stop here rather than reconnect into a refusal.
    source.addEventListener("end", (event) => {
      source.close();
      let reason = "access ended";
      try {
        reason = (JSON.parse((event as MessageEvent<string>).data) as { reason?: string }).reason ?? reason;
      } catch {
        // keep the generic reason
      }
      setLiveState((s) => ({ ...s, status: "closed", note: `Live updates stopped: ${reason}.` }));
    });
    source.onerror = () => {
      setLiveState((s) => ({
        ...s,
        status: source.readyState === EventSource.CLOSED ? "closed" : "retrying",
      }));
    };
    return () => source.close();
  }, [live, experimentId, bus]);

  if (experiment.error || latest.error) {
    return (
      <div class="page">
        <h1>Experiment #{experimentId}</h1>
        <Alert message={experiment.error ?? latest.error} />
        <Link href="/" class="btn">
          Back to the overview
        </Link>
      </div>
    );
  }
  if (!experiment.data || !latest.data || !range) {
    return (
      <div class="page">
        <Loading label="Loading the experiment…" />
      </div>
    );
  }

  const exportLink = (format: "csv" | "ndjson") => api.url(exportPath(experimentId, format, range));

  return (
    <div class="page dashboard">
      <div class="page-head row">
        <div>
          <p class="crumbs">
            <Link href="/">Overview</Link> / experiment #{experimentId}
          </p>
          <h1>{experiment.data.name}</h1>
          <p class="muted">
            {measures.length === 0
              ? "No measures yet."
              : `${measures.length} measure type${measures.length > 1 ? "s" : ""}; latest point ${formatTime(newest)}.`}
          </p>
        </div>
        <div class="head-actions">
          <label class="switch">
            <input type="checkbox" role="switch" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} disabled={measures.length === 0} />
            <span class="switch-track" aria-hidden="true" />
            Live updates
          </label>
          <a class="btn" href={exportLink("csv")} download={`${experiment.data.name}.csv`}>
            Export CSV
          </a>
          <a class="btn" href={exportLink("ndjson")} download={`${experiment.data.name}.ndjson`}>
            Export NDJSON
          </a>
        </div>
      </div>

      {live && (
        <p class={`live-status live-${liveState.status}`} role="status">
          <span class="dot" aria-hidden="true" />
          {liveState.status === "connecting" && "Connecting to the live stream…"}
          {liveState.status === "open" && `Live: ${formatCount(liveState.received)} new point${liveState.received === 1 ? "" : "s"} received`}
          {liveState.status === "retrying" && "Live stream interrupted: reconnecting…"}
          {liveState.status === "closed" && "Live stream closed by the server."}
          {liveState.note && <span class="muted"> {liveState.note}</span>}
        </p>
      )}
      {live && liveState.status === "closed" && <Alert message="Live updates stopped: the server closed the stream. Turn them off and on to retry." />}

      <RangePicker range={range} picked={picked} tz={tz} onChoose={choose} onChange={setRange} />

      {measures.length === 0 && (
        <Empty>
          <strong>No data yet.</strong> This experiment has no measures: sources push them with an ingest token.
        </Empty>
      )}

      {rangeEmpty && (
        <Notice kind="warning">
          <strong>No data in this range.</strong>{" "}
          {newest !== null && (
            <>
              The latest point is from {formatTime(newest)}.{" "}
              <button type="button" class="btn btn-small btn-primary" onClick={() => choose(latestWeek(newest))}>
                Show latest data
              </button>
            </>
          )}
        </Notice>
      )}

      {measures.length > 0 && (
        <div class="grid charts">
          {measures.map((measure, index) => (
            <Card key={measure} title={`${measure}${units[measure] ? ` (${units[measure]})` : ""}`} class="chart-card">
              <Chart
                experimentId={experimentId}
                measure={measure}
                unit={units[measure]}
                colorOffset={index}
                from={range.from}
                to={range.to}
                live={live ? bus : null}
                thresholds={ruleOverlays?.get(measure)?.thresholds}
                firing={ruleOverlays?.get(measure)?.firing}
                onZoom={(from, to) => {
                  const next = customRange(from, to);
                  if (next) setRange(next);
                }}
              />
            </Card>
          ))}
        </div>
      )}

      {measures.length > 0 && (
        <Card title="Statistics for the range" id="statistics">
          <Alert message={totals.error} />
          {totals.loading && totals.rows.length === 0 ? (
            <Loading />
          ) : (
            <div class="table-wrap">
              <table class="data stats-table" aria-busy={totals.loading}>
                <thead>
                  <tr>
                    <th scope="col">Measure</th>
                    <StatHeaders />
                  </tr>
                </thead>
                <tbody>
                  {totals.rows.map((row) => {
                    const b = row.buckets[0];
                    return (
                      <tr key={row.measure} data-measure={row.measure}>
                        <th scope="row">
                          {row.measure}
                          {units[row.measure] && <span class="muted"> ({units[row.measure]})</span>}
                        </th>
                        <StatCells bucket={b} />
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </Card>
      )}

      {measures.length > 0 && (
        <Card title="Statistics per time slice" id="timeslices">
          <div class="toolbar">
            <div class="field inline">
              <label for="timeslice">Timeslice</label>
              <select id="timeslice" value={timeslice} onChange={(e) => setTimeslice(e.currentTarget.value as Timeslice)}>
                {TIMESLICES.map((t) => (
                  <option key={t.id} value={t.id}>
                    {t.label}
                  </option>
                ))}
              </select>
            </div>
            <div class="field inline">
              <label for="timeslice-kind">Slices</label>
              <select
                id="timeslice-kind"
                value={isStatic || !dynamicAllowed(timeslice) ? "static" : "dynamic"}
                disabled={!dynamicAllowed(timeslice)}
                onChange={(e) => setIsStatic(e.currentTarget.value === "static")}
              >
                <option value="static">Static (calendar, {zoneName(tz)})</option>
                <option value="dynamic">Dynamic (from the range start)</option>
              </select>
            </div>
            <p class="muted small">
              Static slices follow the calendar of your time zone ({tz}); dynamic slices have a fixed length starting at the range start.
              {timeslice === "month" ? " Months have no fixed length, so they are always static." : ""}
            </p>
          </div>
          <Alert message={sliced.error} />
          {!timeslice && <p class="muted">Choose a timeslice to see the statistics of each slice.</p>}
          {timeslice && sliced.loading && sliced.rows.length === 0 && <Loading />}
          {timeslice &&
            sliced.rows.map((row) => (
              <div key={row.measure} class="slice-block">
                <h3>
                  {row.measure}
                  {units[row.measure] && <span class="muted"> ({units[row.measure]})</span>}
                  <span class="muted small"> · {row.buckets.length} slices</span>
                </h3>
                {row.buckets.length === 0 ? (
                  <p class="muted">No data in this range.</p>
                ) : (
                  <div class="table-wrap tall">
                    <table class="data">
                      <thead>
                        <tr>
                          <th scope="col">Slice start ({zoneName(tz)})</th>
                          <StatHeaders />
                        </tr>
                      </thead>
                      <tbody>
                        {row.buckets.map((b) => (
                          <tr key={b.start}>
                            <td class="nowrap">{formatTime(b.start, { seconds: false, zone: false })}</td>
                            <StatCells bucket={b} />
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </div>
                )}
              </div>
            ))}
        </Card>
      )}

      {measures.length > 0 && (
        <Card title="Distribution (boxplot)" id="boxplot">
          <Alert message={boxplot.error} />
          {boxplot.loading && !boxplot.data && <Loading />}
          {boxplot.data && boxplot.data.boxes.length === 0 && <p class="muted">No data in this range.</p>}
          {boxplot.data && boxplot.data.boxes.length > 0 && <Boxplot boxes={boxplot.data.boxes} units={units} />}
        </Card>
      )}

      <ByTagCard
        experimentId={experimentId}
        latest={latest.data.latest}
        range={range}
        timeslice={timeslice}
        isStatic={isStatic}
        tz={tz}
        units={units}
      />

      <AlertRulesCard experimentId={experimentId} rules={rules} measures={measures} latest={latest.data.latest} units={units} />

      <SourcesCard experimentId={experimentId} />
    </div>
  );
}

function RangePicker(props: {
  range: TimeRange;
  picked: TimeRange | null;
  tz: string;
  onChoose: (r: TimeRange) => void;
  onChange: (r: TimeRange) => void;
}) {
  const { range } = props;
  const [custom, setCustom] = useState(range.preset === "custom");
  const [fromText, setFromText] = useState(toDatetimeLocal(range.from));
  const [toText, setToText] = useState(toDatetimeLocal(range.to));
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    setFromText(toDatetimeLocal(range.from));
    setToText(toDatetimeLocal(range.to));
  }, [range.from, range.to]);

  const zoomed = props.picked !== null && (props.picked.from !== range.from || props.picked.to !== range.to);

  return (
    <section class="card range-card" aria-label="Time range">
      <div class="range-row">
        <div class="segmented" role="group" aria-label="Time range presets">
          {PRESETS.map((p) => (
            <button
              type="button"
              key={p.id}
              class="seg"
              aria-pressed={!custom && range.preset === p.id}
              onClick={() => {
                setCustom(false);
                setError(null);
                props.onChoose(presetRange(p.id));
              }}
            >
              {p.label}
            </button>
          ))}
          <button type="button" class="seg" aria-pressed={custom || range.preset === "custom"} onClick={() => setCustom(true)}>
            Custom
          </button>
        </div>
        <div class="range-nav" role="group" aria-label="Pan and zoom">
          <button type="button" class="btn btn-small" aria-label="Pan earlier" title="Pan earlier" onClick={() => props.onChange(pan(range, -0.5))}>
            ◀
          </button>
          <button type="button" class="btn btn-small" onClick={() => props.onChange(zoom(range, 0.5))}>
            Zoom in
          </button>
          <button type="button" class="btn btn-small" onClick={() => props.onChange(zoom(range, 2))}>
            Zoom out
          </button>
          <button type="button" class="btn btn-small" aria-label="Pan later" title="Pan later" onClick={() => props.onChange(pan(range, 0.5))}>
            ▶
          </button>
          <button type="button" class="btn btn-small" disabled={!zoomed} onClick={() => props.picked && props.onChange(props.picked)}>
            Reset zoom
          </button>
        </div>
      </div>
      {custom && (
        <form
          class="range-custom"
          onSubmit={(e) => {
            e.preventDefault();
            const from = fromDatetimeLocal(fromText);
            const to = fromDatetimeLocal(toText);
            const next = from !== null && to !== null ? customRange(from, to) : null;
            if (!next) {
              setError("Enter a start and an end that differ.");
              return;
            }
            setError(null);
            props.onChoose(next);
          }}
        >
          <div class="field inline">
            <label for="range-from">From</label>
            <input id="range-from" type="datetime-local" value={fromText} onInput={(e) => setFromText(e.currentTarget.value)} required />
          </div>
          <div class="field inline">
            <label for="range-to">To</label>
            <input id="range-to" type="datetime-local" value={toText} onInput={(e) => setToText(e.currentTarget.value)} required />
          </div>
          <button type="submit" class="btn btn-primary btn-small">
            Apply
          </button>
          <Alert message={error} />
        </form>
      )}
      <p class="range-label muted">
        <span class="num">{formatTime(range.from, { seconds: false, zone: false })}</span> →{" "}
        <span class="num">{formatTime(range.to, { seconds: false, zone: false })}</span> ({props.tz === zoneName(props.tz) ? props.tz : `${props.tz}, ${zoneName(props.tz)}`}) ·
        drag across a chart to zoom, shift+drag to pan
      </p>
    </section>
  );
}
