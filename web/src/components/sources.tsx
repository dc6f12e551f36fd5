// Sources for people: a source's state badge, when it last worked, how far its history has
// loaded and its last error, as table columns; and the read-only list of an experiment's
// sources on its dashboard.

import { useApi, useInterval } from "../hooks";
import { formatAgo, formatCount, formatDuration, formatTime } from "../lib/format";
import { STATE_BADGES, historyPercent, kindOf, loadingHistory, shorten, sourcesPath, sourcesPollMs, urlHost } from "../lib/sources";
import type { Source } from "../lib/types";
import { Card, DataTable, type Column } from "./ui";

const ERROR_CHARS = 80;

export function SourceStateBadge({ source }: { source: Source }) {
  const notes: string[] = [];
  if (source.failures > 0) notes.push(`${source.failures} failure${source.failures === 1 ? "" : "s"} in a row`);
  if (source.next_fetch_at && source.enabled) notes.push(`next fetch ${formatTime(source.next_fetch_at)}`);
  return (
    <span class={STATE_BADGES[source.state]} title={notes.join("; ") || undefined}>
      {source.state}
    </span>
  );
}

/** When the source last answered, relative, with the time in the tooltip. */
export function LastSuccess({ source, now }: { source: Source; now: number }) {
  if (!source.last_success_at) return <span class="muted">never</span>;
  const ms = Date.parse(source.last_success_at);
  return (
    <time dateTime={source.last_success_at} title={formatTime(ms)}>
      {formatAgo(ms, now)}
    </time>
  );
}

/** A progress bar while the source's history loads; "loaded" once caught up. */
export function HistoryProgress({ source, now }: { source: Source; now: number }) {
  if (!loadingHistory(source)) {
    return source.history_from ? (
      <span class="muted" title={`History from ${formatTime(source.history_from)}`}>
        loaded
      </span>
    ) : (
      <span class="muted">—</span>
    );
  }
  const percent = historyPercent(source, now);
  const label = `History of ${source.url} loaded`;
  const title = source.loaded_until ? `Loaded up to ${formatTime(source.loaded_until)}` : "Loading from the first record";
  return (
    <div class="history" title={title}>
      {percent === null ? <progress aria-label={label} /> : <progress max={100} value={percent} aria-label={label} />}
      <span class="small nowrap">
        {percent === null ? "" : `${percent} % · `}
        {formatDuration(source.backlog * 1000)} to load
      </span>
    </div>
  );
}

/** The last error, shortened (whole, with its time, in the tooltip); dimmed once the source
 * works again. */
export function LastError({ source }: { source: Source }) {
  if (!source.last_error) return <span class="muted">—</span>;
  const whole = source.last_error_at ? `${formatTime(source.last_error_at)}: ${source.last_error}` : source.last_error;
  return (
    <span class={source.state === "failing" ? "error-text" : "error-text muted"} title={whole}>
      {shorten(source.last_error, ERROR_CHARS)}
    </span>
  );
}

/** The columns of a list of sources; the admin's also name the experiment, the whole URL and
 * the interval. */
export function sourceColumns(now: number, admin: boolean): Column<Source>[] {
  const where: Column<Source>[] = admin
    ? [
        { header: "Experiment", cell: (s) => s.experiment },
        { header: "Kind", cell: (s) => kindOf(s.kind).label },
        { header: "URL", class: "mono url-cell", cell: (s) => s.url },
        { header: "Interval", class: "num nowrap", cell: (s) => formatDuration(s.interval_secs * 1000) },
      ]
    : [
        { header: "Kind", cell: (s) => kindOf(s.kind).label },
        { header: "Host", class: "mono", cell: (s) => urlHost(s.url), title: (s) => s.url },
      ];
  return [
    ...where,
    { header: "State", cell: (s) => <SourceStateBadge source={s} /> },
    { header: "Last success", class: "nowrap", cell: (s) => <LastSuccess source={s} now={now} /> },
    { header: "Points", class: "num", cell: (s) => formatCount(s.points_fetched) },
    { header: "History", cell: (s) => <HistoryProgress source={s} now={now} /> },
    { header: "Last error", class: "error-cell", cell: (s) => <LastError source={s} /> },
  ];
}

/** An experiment's sources, for its readers; nothing when it has none or they may not see
 * them. */
export function SourcesCard({ experimentId }: { experimentId: number }) {
  const sources = useApi<Source[]>(sourcesPath(experimentId));
  const shown = sources.data !== undefined && sources.data.length > 0;
  useInterval(sources.reload, shown ? sourcesPollMs(sources.data) : null);
  // 404: a server without sources.
  if (sources.errorStatus === 403 || sources.errorStatus === 404) return null;
  if (!shown && !sources.error) return null;
  return (
    <Card title="Sources" id="sources">
      <p class="muted small">Where MyMonit fetches this experiment's measures from.</p>
      <DataTable
        id="sources-table"
        fetched={sources}
        empty="No sources."
        rowKey={(s) => s.source_id}
        columns={sourceColumns(Date.now(), false)}
      />
    </Card>
  );
}
