// SVG charts: sparklines for the overview and the counts per time slice, boxplots for the dashboard.

import { formatNumber } from "../lib/format";
import { boxDomain, boxGeometry, sharedDomain, sparklinePoints } from "../lib/shape";
import type { BoxplotBox, SeriesData } from "../lib/types";
import { COLORS } from "./chart";

const SPARK_W = 160;
const SPARK_H = 40;

export function Sparkline({ series, label }: { series: SeriesData[]; label: string }) {
  const drawn = series.filter((s) => s.timestamps_ms.length > 0);
  return (
    <svg class="sparkline" viewBox={`0 0 ${SPARK_W} ${SPARK_H}`} preserveAspectRatio="none" role="img" aria-label={label}>
      {drawn.map((s, i) => (
        <polyline
          key={i}
          points={sparklinePoints(s.timestamps_ms, s.values, SPARK_W, SPARK_H)}
          fill="none"
          stroke={COLORS[i % COLORS.length]}
          stroke-width="1.5"
          vector-effect="non-scaling-stroke"
          stroke-linejoin="round"
        />
      ))}
    </svg>
  );
}

/** One horizontal box per measure type, each on its own axis (units differ); or, `shared`,
 * one per group of a measure type on a common axis. */
export function Boxplot({
  boxes,
  units,
  labelOf = (box) => box.measure,
  shared = false,
}: {
  boxes: BoxplotBox[];
  units: Record<string, string>;
  labelOf?: (box: BoxplotBox) => string;
  shared?: boolean;
}) {
  const common = shared ? sharedDomain(boxes) : null;
  return (
    <div class="boxplots">
      {boxes.map((box, i) => {
        const domain = common ?? boxDomain(box);
        const g = boxGeometry(box, domain);
        const unit = units[box.measure] ? ` ${units[box.measure]}` : "";
        const color = COLORS[i % COLORS.length];
        const label = labelOf(box);
        return (
          <figure class="boxplot" key={`${box.measure}\u0000${box.group ?? ""}`}>
            <figcaption>
              <strong>{label}</strong>
              <span class="muted num"> n = {formatNumber(box.count)}</span>
            </figcaption>
            {g && domain ? (
              <svg
                class="boxplot-svg"
                width="100%"
                height="36"
                role="img"
                aria-label={`${label}: min ${formatNumber(box.min)}, first quartile ${formatNumber(box.p25)}, median ${formatNumber(box.p50)}, third quartile ${formatNumber(box.p75)}, max ${formatNumber(box.max)}${unit}`}
              >
                <line x1={`${g.min}%`} x2={`${g.max}%`} y1="18" y2="18" stroke="#9aa4b2" stroke-width="1.5" />
                <line x1={`${g.min}%`} x2={`${g.min}%`} y1="10" y2="26" stroke="#9aa4b2" stroke-width="1.5" />
                <line x1={`${g.max}%`} x2={`${g.max}%`} y1="10" y2="26" stroke="#9aa4b2" stroke-width="1.5" />
                <rect
                  x={`${g.p25}%`}
                  width={`${Math.max(g.p75 - g.p25, 0.3)}%`}
                  y="6"
                  height="24"
                  rx="3"
                  fill={color}
                  fill-opacity="0.25"
                  stroke={color}
                  stroke-width="1.5"
                />
                <line x1={`${g.p50}%`} x2={`${g.p50}%`} y1="6" y2="30" stroke="#f8fafc" stroke-width="2" />
              </svg>
            ) : (
              <div class="muted">No figures</div>
            )}
            <dl class="five-numbers num">
              <div><dt>min</dt><dd>{formatNumber(box.min)}</dd></div>
              <div><dt>p25</dt><dd>{formatNumber(box.p25)}</dd></div>
              <div><dt>median</dt><dd>{formatNumber(box.p50)}</dd></div>
              <div><dt>p75</dt><dd>{formatNumber(box.p75)}</dd></div>
              <div><dt>max</dt><dd>{formatNumber(box.max)}{unit}</dd></div>
            </dl>
          </figure>
        );
      })}
    </div>
  );
}
