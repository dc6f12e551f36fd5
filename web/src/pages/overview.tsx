// Home of admins and scientists: the experiments they may see. Scientists get latest values
// and sparklines; admins (who may not read measures) get the associations.

import { useMemo } from "preact/hooks";
import { Sparkline } from "../components/small-charts";
import { Alert, Card, Empty, Link, Loading } from "../components/ui";
import { useApi, useSession, useTitle } from "../hooks";
import { formatAgo, formatNumber, formatTime } from "../lib/format";
import { latestPath, seriesPath } from "../lib/query";
import { latestByType, newestTimestamp } from "../lib/shape";
import { DAY } from "../lib/timerange";
import type { Association, Experiment, LatestAnswer, MeasureType, SeriesAnswer } from "../lib/types";

export function useUnits(): Record<string, string> {
  const types = useApi<MeasureType[]>("/measure-types");
  return useMemo(() => Object.fromEntries((types.data ?? []).map((t) => [t.name, t.symbol])), [types.data]);
}

export function OverviewPage() {
  useTitle("Overview");
  const { user } = useSession();
  const experiments = useApi<Experiment[]>("/experiments");
  const isAdmin = user.role === "ADMIN";
  return (
    <div class="page">
      <div class="page-head">
        <h1>Overview</h1>
        <p class="muted">
          {isAdmin
            ? "Every experiment and who works on it. Admins manage experiments but cannot read their measures (separation of duties)."
            : "Your experiments with their latest values over the last day of data."}
        </p>
      </div>
      <Alert message={experiments.error} />
      {experiments.loading && !experiments.data && <Loading label="Loading experiments…" />}
      {experiments.data && experiments.data.length === 0 && (
        <Empty>
          <strong>No experiments yet.</strong>{" "}
          {isAdmin ? (
            <>
              <Link href="/admin/experiments">Create one</Link> in Admin.
            </>
          ) : (
            "Ask an admin to associate you with an experiment."
          )}
        </Empty>
      )}
      {experiments.data && experiments.data.length > 0 && (isAdmin ? <AdminOverview experiments={experiments.data} /> : <ScientistOverview experiments={experiments.data} />)}
    </div>
  );
}

function AdminOverview({ experiments }: { experiments: Experiment[] }) {
  const associations = useApi<Association[]>("/associations");
  return (
    <>
      <Alert message={associations.error} />
      <div class="grid cards">
        {experiments.map((e) => {
          const people = (associations.data ?? []).filter((a) => a.experiment.experiment_id === e.experiment_id);
          return (
            <Card key={e.experiment_id} title={e.name} class="experiment-card">
              <p class="muted">Experiment #{e.experiment_id}</p>
              {associations.loading && !associations.data ? (
                <Loading />
              ) : people.length === 0 ? (
                <p class="muted">No scientist associated.</p>
              ) : (
                <ul class="plain">
                  {people.map((a) => (
                    <li key={a.user.user_id}>
                      {a.user.name} <span class="muted">({a.user.user_id})</span>
                    </li>
                  ))}
                </ul>
              )}
              <div class="card-foot">
                <Link href="/admin/associations" class="btn btn-small">
                  Associations
                </Link>
                <Link href="/admin/ingest-tokens" class="btn btn-small">
                  Ingest tokens
                </Link>
              </div>
            </Card>
          );
        })}
      </div>
    </>
  );
}

function ScientistOverview({ experiments }: { experiments: Experiment[] }) {
  const units = useUnits();
  return (
    <div class="grid cards">
      {experiments.map((e) => (
        <ExperimentCard key={e.experiment_id} experiment={e} units={units} />
      ))}
    </div>
  );
}

function ExperimentCard({ experiment, units }: { experiment: Experiment; units: Record<string, string> }) {
  const latest = useApi<LatestAnswer>(latestPath(experiment.experiment_id));
  const types = latest.data ? latestByType(latest.data.latest) : [];
  const newest = latest.data ? newestTimestamp(latest.data.latest) : null;
  const href = `/experiments/${experiment.experiment_id}`;
  return (
    <Card
      title={
        <Link href={href} class="card-title-link">
          {experiment.name}
        </Link>
      }
      class="experiment-card"
    >
      <Alert message={latest.error} />
      {latest.loading && !latest.data && <Loading />}
      {latest.data && types.length === 0 && <p class="muted">No data yet.</p>}
      {types.length > 0 && (
        <ul class="measure-list">
          {types.map((t) => (
            <li key={t.measure}>
              <div class="measure-meta">
                <span class="measure-name">{t.measure}</span>
                <span class="measure-value num">
                  {formatNumber(t.value)}
                  {units[t.measure] && <span class="unit"> {units[t.measure]}</span>}
                </span>
                <span class="muted small" title={formatTime(t.timestampMs)}>
                  {formatAgo(t.timestampMs)}
                  {t.series > 1 ? ` · ${t.series} series` : ""}
                </span>
              </div>
              {newest !== null && <MeasureSparkline experimentId={experiment.experiment_id} measure={t.measure} end={newest} />}
            </li>
          ))}
        </ul>
      )}
      <div class="card-foot">
        <Link href={href} class="btn btn-small btn-primary">
          Open dashboard
        </Link>
      </div>
    </Card>
  );
}

function MeasureSparkline({ experimentId, measure, end }: { experimentId: number; measure: string; end: number }) {
  const to = end + 1000;
  const answer = useApi<SeriesAnswer>(seriesPath(experimentId, measure, { from: to - DAY, to }, 60));
  if (answer.error) return <span class="muted small" role="alert">{answer.error}</span>;
  if (!answer.data) return <span class="sparkline placeholder" aria-hidden="true" />;
  return <Sparkline series={answer.data.series} label={`${measure} over the day to ${formatTime(end)}`} />;
}
