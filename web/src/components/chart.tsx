// One uPlot chart of a measure type: the series downsampled by the server to about one
// point per pixel, drag to zoom, shift+drag to pan, live points appended. With many series
// the legend starts folded to a count, and hovering a line reads out that series alone. The
// measure type's alert rules show as dashed threshold lines, over red shading where they fired.

import { useEffect, useId, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import { useWidth } from "../hooks";
import { thresholdText, type ChartThreshold, type Interval } from "../lib/alerts";
import { api, errorMessage, isAbort } from "../lib/api";
import { formatCount, formatNumber, formatTime } from "../lib/format";
import { foldsLegend } from "../lib/legend";
import { seriesPath } from "../lib/query";
import { alignSeries, appendPoint, type Aligned } from "../lib/shape";
import type { LiveMeasure, SeriesAnswer } from "../lib/types";
import { Alert } from "./ui";

export const COLORS = ["#38bdf8", "#f59e0b", "#a78bfa", "#34d399", "#f472b6", "#fb7185", "#facc15", "#60a5fa"];

/** A threshold's line, by its rule's state: the one about to fire or firing stands out. */
export const THRESHOLD_COLORS: Record<ChartThreshold["state"], string> = {
  firing: "#f87171",
  pending: "#fbbf24",
  inactive: "#cbd5e1",
};
/** Translucent, so that the grid and the series stay readable through it. */
const FIRING_FILL = "rgba(248, 113, 113, 0.16)";
const NO_THRESHOLDS: ChartThreshold[] = [];
const NO_PERIODS: Interval[] = [];

/** Hands live measures to the charts of their measure type. */
export class LiveBus {
  private listeners = new Map<string, Set<(m: LiveMeasure) => void>>();
  subscribe(measure: string, listener: (m: LiveMeasure) => void): () => void {
    let set = this.listeners.get(measure);
    if (!set) this.listeners.set(measure, (set = new Set()));
    set.add(listener);
    return () => set!.delete(listener);
  }
  emit(measure: LiveMeasure): void {
    this.listeners.get(measure.measure_type)?.forEach((l) => l(measure));
  }
}

interface ChartProps {
  experimentId: number;
  measure: string;
  unit?: string;
  from: number;
  to: number;
  onZoom: (from: number, to: number) => void;
  live: LiveBus | null;
  height?: number;
  /** First colour of the palette to use (so neighbouring charts differ). */
  colorOffset?: number;
  /** The thresholds of the measure type's alert rules. */
  thresholds?: ChartThreshold[];
  /** When any of those rules fired, epoch ms. */
  firing?: Interval[];
}

type Status = "loading" | "ready" | "empty" | "error";

/** The series under the cursor, as the folded legend reads it out. */
interface Hovered {
  label: string;
  color: string;
  value: string;
  time: string;
}

function toColumns(data: Aligned): uPlot.AlignedData {
  return [data.x, ...data.ys] as uPlot.AlignedData;
}

/** Shades the firing periods across the plot's height: drawn after the grid, before the series. */
function drawFiring(u: uPlot, periods: Interval[]) {
  if (periods.length === 0) return;
  const { left, top, width, height } = u.bbox;
  const ctx = u.ctx;
  ctx.save();
  ctx.fillStyle = FIRING_FILL;
  for (const p of periods) {
    const a = u.valToPos(p.from / 1000, "x", true);
    const b = u.valToPos(p.to / 1000, "x", true);
    if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
    const x0 = Math.max(left, Math.min(a, b));
    const x1 = Math.min(left + width, Math.max(a, b));
    if (x1 < x0) continue;
    // A firing shorter than a pixel still shows.
    ctx.fillRect(x0, top, Math.max(x1 - x0, devicePixelRatio || 1), height);
  }
  ctx.restore();
}

/** Each threshold as a dashed line named after its rule; one off the y range as a tag at the
 * edge it lies beyond, so that it is never silently missing. */
function drawThresholds(u: uPlot, thresholds: ChartThreshold[]) {
  const { min, max } = u.scales.y;
  if (thresholds.length === 0 || min === undefined || max === undefined || min === null || max === null) return;
  const { left, top, width, height } = u.bbox;
  const ratio = devicePixelRatio || 1;
  const ctx = u.ctx;
  const lineHeight = 15 * ratio;
  let above = 0;
  let below = 0;
  ctx.save();
  ctx.font = `${11 * ratio}px system-ui, sans-serif`;
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  for (const t of thresholds) {
    const color = THRESHOLD_COLORS[t.state];
    const text = `${t.name} ${t.op} ${thresholdText(t.threshold)}`;
    let y: number;
    let label: string;
    if (t.threshold > max) {
      y = top + lineHeight * (above++ + 0.6);
      label = `▲ ${text}`;
    } else if (t.threshold < min) {
      y = top + height - lineHeight * (below++ + 0.6);
      label = `▼ ${text}`;
    } else {
      y = Math.round(u.valToPos(t.threshold, "y", true));
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5 * ratio;
      ctx.setLineDash([6 * ratio, 4 * ratio]);
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      ctx.stroke();
      ctx.setLineDash([]);
      // Above the line, unless that leaves the plot.
      y = y - 9 * ratio < top ? y + 9 * ratio : y - 9 * ratio;
      label = text;
    }
    const textWidth = ctx.measureText(label).width;
    const x = left + width - 4 * ratio;
    ctx.fillStyle = "rgba(15, 20, 25, 0.75)";
    ctx.fillRect(x - textWidth - 3 * ratio, y - 7 * ratio, textWidth + 6 * ratio, 14 * ratio);
    ctx.fillStyle = color;
    ctx.fillText(label, x, y);
  }
  ctx.restore();
}

export function Chart(props: ChartProps) {
  const height = props.height ?? 240;
  const [wrapRef, width] = useWidth<HTMLDivElement>(10);
  const plotEl = useRef<HTMLDivElement>(null);
  const legendEl = useRef<HTMLDivElement>(null);
  const legendId = useId();
  const plot = useRef<uPlot | null>(null);
  /** The tag sets the plot was built for: the same ones in the same order only need new data. */
  const plotKeys = useRef<string[]>([]);
  const data = useRef<Aligned | null>(null);
  const [status, setStatus] = useState<Status>("loading");
  const [error, setError] = useState<string | null>(null);
  const [points, setPoints] = useState(0);
  const [seriesCount, setSeriesCount] = useState(0);
  /** Null until the user opens or closes the legend: until then the series count decides. */
  const [legendChoice, setLegendChoice] = useState<boolean | null>(null);
  const [hovered, setHovered] = useState<Hovered | null>(null);
  const folds = foldsLegend(seriesCount);
  const legendOpen = legendChoice ?? !folds;
  const latest = useRef(props);
  latest.current = props;

  function xBounds(d: Aligned): { min: number; max: number } {
    const { from, to } = latest.current;
    const last = d.x.length ? d.x[d.x.length - 1] : to / 1000;
    return { min: from / 1000, max: Math.max(to / 1000, last) };
  }

  function destroy() {
    plot.current?.destroy();
    plot.current = null;
    plotKeys.current = [];
  }

  function create(d: Aligned, w: number) {
    destroy();
    setHovered(null);
    if (!plotEl.current) return;
    const color = (i: number) => COLORS[(i + (latest.current.colorOffset ?? 0)) % COLORS.length];
    // uPlot tells which series it focuses through setSeries, before it fires setCursor.
    let focused: number | null = null;
    let shown = "";
    const readOut = (u: uPlot) => {
      const idx = focused === null ? null : u.cursor.idxs?.[focused];
      const value = focused === null || idx === null || idx === undefined ? null : u.data[focused][idx];
      const next: Hovered | null =
        focused === null || idx === null || idx === undefined || value === null || value === undefined
          ? null
          : { label: d.labels[focused - 1], color: color(focused - 1), value: formatNumber(value), time: formatTime(u.data[0][idx] * 1000) };
      // setCursor fires on every mouse move: render only when the reading changes.
      const key = next ? `${focused}|${next.value}|${next.time}` : "";
      if (key !== shown) {
        shown = key;
        setHovered(next);
      }
    };
    const opts: uPlot.Options = {
      width: w,
      height,
      padding: [8, 8, 0, 0],
      scales: { x: { time: true } },
      series: [
        { value: (_u, v) => (v === null || v === undefined ? "—" : formatTime(v * 1000)) },
        ...d.labels.map((label, i) => ({
          label,
          stroke: color(i),
          width: 1.5,
          spanGaps: true,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? "—" : formatNumber(v)),
        })),
      ],
      axes: [
        { stroke: "#9aa4b2", grid: { stroke: "#243041", width: 1 }, ticks: { stroke: "#243041", width: 1 } },
        {
          stroke: "#9aa4b2",
          size: 64,
          grid: { stroke: "#243041", width: 1 },
          ticks: { stroke: "#243041", width: 1 },
          values: (_u, splits) => splits.map((v) => formatNumber(v)),
        },
      ],
      cursor: {
        drag: { x: true, y: false, setScale: false },
        bind: { dblclick: () => () => null },
        // A null only means that series had no point at a time another series had one: read
        // each series at its nearest point instead, or most would read as missing.
        hover: { skip: [null, undefined] },
        // Among dozens of lines, the one under the cursor stands out and is the one read out.
        focus: { prox: 24 },
      },
      // Outside the plot, so that the folded legend's summary sits between the two.
      legend: { live: true, mount: (_u, el) => legendEl.current?.appendChild(el) },
      hooks: {
        drawAxes: [(u) => drawFiring(u, latest.current.firing ?? NO_PERIODS)],
        draw: [(u) => drawThresholds(u, latest.current.thresholds ?? NO_THRESHOLDS)],
        setSeries: [
          (_u, i, o) => {
            // Typed as a Series, but uPlot passes the change it made: {show} or {focus}.
            if ((o as { focus?: boolean }).focus) focused = i;
          },
        ],
        setCursor: [readOut],
        setSelect: [
          (u) => {
            const { left, width: selected } = u.select;
            if (selected > 4) {
              const a = u.posToVal(left, "x");
              const b = u.posToVal(left + selected, "x");
              latest.current.onZoom(Math.round(a * 1000), Math.round(b * 1000));
            }
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          },
        ],
      },
    };
    const u = new uPlot(opts, toColumns(d), plotEl.current);
    u.setScale("x", xBounds(d));
    plot.current = u;
    plotKeys.current = d.keys;
  }

  function draw(d: Aligned, w: number) {
    data.current = d;
    setPoints(d.points);
    setSeriesCount(d.keys.length);
    if (d.points === 0) {
      destroy();
      setStatus("empty");
      return;
    }
    setStatus("ready");
    const u = plot.current;
    const sameSeries = u && plotKeys.current.length === d.keys.length && d.keys.every((k, i) => plotKeys.current[i] === k);
    if (!u || !sameSeries) {
      create(d, w);
    } else {
      u.setData(toColumns(d));
      u.setScale("x", xBounds(d));
    }
  }

  // Fetches about one point per pixel whenever the range, the measure or the width changes.
  useEffect(() => {
    if (width <= 0) return;
    const controller = new AbortController();
    setStatus((s) => (s === "ready" ? s : "loading"));
    setError(null);
    const path = seriesPath(props.experimentId, props.measure, { from: props.from, to: props.to }, width);
    api.get<SeriesAnswer>(path, undefined, controller.signal).then(
      (answer) => {
        if (controller.signal.aborted) return;
        draw(alignSeries(props.measure, answer.series), width);
      },
      (err) => {
        if (isAbort(err) || controller.signal.aborted) return;
        destroy();
        setError(errorMessage(err));
        setStatus("error");
      },
    );
    return () => controller.abort();
  }, [props.experimentId, props.measure, props.from, props.to, width]);

  // The rules' lines and shading change without new data: only the canvas is drawn again.
  const thresholds = props.thresholds ?? NO_THRESHOLDS;
  const firing = props.firing ?? NO_PERIODS;
  const overlayKey = JSON.stringify([thresholds, firing]);
  useEffect(() => {
    plot.current?.redraw(false, false);
  }, [overlayKey]);

  // Follows the container's width.
  useEffect(() => {
    if (plot.current && width > 0) plot.current.setSize({ width, height });
  }, [width, height]);

  // Live points.
  useEffect(() => {
    if (!props.live) return;
    return props.live.subscribe(props.measure, (m) => {
      const ms = Date.parse(m.timestamp);
      if (Number.isNaN(ms)) return;
      const base = data.current ?? alignSeries(props.measure, []);
      draw(appendPoint(base, props.measure, m.tags, ms, m.value), width || 600);
    });
  }, [props.live, props.measure, width]);

  // Shift+drag pans (captured before uPlot's own selection).
  useEffect(() => {
    const root = wrapRef.current;
    if (!root) return;
    const down = (event: MouseEvent) => {
      const u = plot.current;
      if (!event.shiftKey || event.button !== 0 || !u || !(event.target instanceof Node) || !u.over.contains(event.target)) return;
      event.stopPropagation();
      event.preventDefault();
      const min0 = u.scales.x.min!;
      const max0 = u.scales.x.max!;
      const x0 = event.clientX;
      const perPixel = (max0 - min0) / u.over.clientWidth;
      let moved = 0;
      const move = (e: MouseEvent) => {
        moved = e.clientX - x0;
        const shift = -moved * perPixel;
        u.setScale("x", { min: min0 + shift, max: max0 + shift });
      };
      const up = () => {
        window.removeEventListener("mousemove", move);
        window.removeEventListener("mouseup", up);
        if (Math.abs(moved) > 2) {
          const shift = -moved * perPixel;
          latest.current.onZoom(Math.round((min0 + shift) * 1000), Math.round((max0 + shift) * 1000));
        }
      };
      window.addEventListener("mousemove", move);
      window.addEventListener("mouseup", up);
    };
    root.addEventListener("mousedown", down, true);
    return () => root.removeEventListener("mousedown", down, true);
  }, []);

  useEffect(() => destroy, []);

  return (
    <div
      class={`chart chart-${status}`}
      ref={wrapRef}
      data-measure={props.measure}
      data-points={String(points)}
      data-state={status}
      aria-busy={status === "loading"}
    >
      <div
        class="chart-plot"
        ref={plotEl}
        role="img"
        aria-label={`Chart of ${props.measure}${props.unit ? ` (${props.unit})` : ""}: ${formatCount(seriesCount)} series, ${formatCount(points)} points drawn${
          thresholds.length ? `, ${thresholds.length} alert threshold${thresholds.length === 1 ? "" : "s"}` : ""
        }. Drag to zoom, shift+drag to pan.`}
      />
      {folds && status === "ready" && (
        <div class="chart-summary">
          <span class="chart-reading">
            {formatCount(seriesCount)} series
            {hovered ? (
              <>
                {" · "}
                <span class="chart-swatch" style={{ background: hovered.color }} aria-hidden="true" />
                {hovered.label}: <strong class="num">{hovered.value}</strong> <span class="muted">at {hovered.time}</span>
              </>
            ) : (
              !legendOpen && <span class="muted"> · point at a line to read its value</span>
            )}
          </span>
          <button
            type="button"
            class="btn btn-small"
            aria-expanded={legendOpen}
            aria-controls={legendId}
            onClick={() => setLegendChoice(!legendOpen)}
          >
            {legendOpen ? "Hide the legend" : "Show the legend"}
          </button>
        </div>
      )}
      <div class={`chart-legend${folds ? " chart-legend-long" : ""}`} id={legendId} ref={legendEl} hidden={!legendOpen} />
      {thresholds.length > 0 && (
        <ul class="chart-rules" aria-label={`Alert rules of ${props.measure}`}>
          {thresholds.map((t) => (
            <li key={t.ruleId} data-rule-id={t.ruleId} data-state={t.state}>
              <span class="chart-threshold-swatch" style={{ borderColor: THRESHOLD_COLORS[t.state] }} aria-hidden="true" />
              {t.name} <span class="num">{`${t.op} ${thresholdText(t.threshold)}`}</span>
              {t.state !== "inactive" && <span class="muted"> ({t.state})</span>}
            </li>
          ))}
          {firing.length > 0 && (
            <li class="muted">
              <span class="chart-firing-swatch" aria-hidden="true" />
              shaded: firing
            </li>
          )}
        </ul>
      )}
      {status === "loading" && !plot.current && <div class="chart-overlay">Loading…</div>}
      {status === "empty" && <div class="chart-overlay">No data in this range</div>}
      {status === "error" && <Alert message={error} />}
    </div>
  );
}
