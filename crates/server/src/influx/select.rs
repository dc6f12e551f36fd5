//! InfluxQL `SELECT` on MyMonit's store, with InfluxDB 1.x's answers: windows aligned to the
//! epoch (or `tz`), nearest-rank `percentile`, sample `stddev`, `count` of 0 in empty windows,
//! a selector's own time when it is alone and there is no `GROUP BY time`, the range's start
//! otherwise, and no series for a group without points.

use std::collections::{BTreeMap, BTreeSet};

use chrono_tz::Tz;
use mymonit_formats::{EARLIEST_TIMESTAMP_NS, END_OF_TIMESTAMPS_NS, line_protocol::FIELD_TAG};
use mymonit_influxql::{
    Epoch, QueryError, SeriesResult,
    ast::{BinaryOp, Expr, Fill, GroupTags, Select, Source},
    condition::{TagFilter, TimeRange, split_time},
    number,
    window::{fill_column, window, window_starts},
};
use mymonit_store::{Point, Series};
use mymonit_tsdb::stats::{Figure, Statistic};
use serde_json::Value;

use super::{
    catalogue::{Catalogue, field_of},
    query::store_error,
};
use crate::{
    query::{Input, aggregate_groups, earliest, off_thread, read_series},
    state::AppState,
};

/// An aggregate function InfluxQL names.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Mean,
    Median,
    Count,
    Min,
    Max,
    Sum,
    Stddev,
    Spread,
    First,
    Last,
    Percentile(f64),
}

/// Functions InfluxQL has that MyMonit does not answer.
const OTHER_FUNCTIONS: &[&str] = &[
    "mode",
    "distinct",
    "integral",
    "derivative",
    "non_negative_derivative",
    "difference",
    "non_negative_difference",
    "moving_average",
    "cumulative_sum",
    "elapsed",
    "top",
    "bottom",
    "sample",
    "holt_winters",
    "holt_winters_with_fit",
    "exponential_moving_average",
    "double_exponential_moving_average",
    "triple_exponential_moving_average",
    "relative_strength_index",
    "chande_momentum_oscillator",
    "kaufmans_efficiency_ratio",
    "kaufmans_adaptive_moving_average",
    "triple_exponential_derivative",
    "abs",
    "sqrt",
    "pow",
    "log",
    "ln",
    "round",
    "floor",
    "ceil",
];

/// One aggregate call of the field list: a function of a field.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    func: Func,
    field: String,
}

impl Call {
    fn parse(name: &str, args: &[Expr]) -> Result<Self, QueryError> {
        let expected = if name == "percentile" { 2 } else { 1 };
        let func = match name {
            "mean" => Func::Mean,
            "median" => Func::Median,
            "count" => Func::Count,
            "min" => Func::Min,
            "max" => Func::Max,
            "sum" => Func::Sum,
            "stddev" => Func::Stddev,
            "spread" => Func::Spread,
            "first" => Func::First,
            "last" => Func::Last,
            "percentile" => Func::Percentile(0.0),
            other if OTHER_FUNCTIONS.contains(&other) => {
                return Err(QueryError::new(format!(
                    "function {other}() is not supported: MyMonit answers mean, median, count, \
                     min, max, sum, stddev, spread, first, last and percentile"
                )));
            }
            other => return Err(QueryError::new(format!("undefined function {other}()"))),
        };
        if args.len() != expected {
            return Err(QueryError::new(format!(
                "invalid number of arguments for {name}, expected {expected}, got {}",
                args.len()
            )));
        }
        let field = match &args[0] {
            Expr::VarRef(field) => field.clone(),
            Expr::Wildcard => {
                return Err(QueryError::new(format!(
                    "{name}(*) is not supported: name the field, as in {name}(\"value\")"
                )));
            }
            other => {
                return Err(QueryError::new(format!(
                    "expected field argument in {name}(), got {other}"
                )));
            }
        };
        let func = match (func, args.get(1)) {
            (Func::Percentile(_), Some(Expr::Integer(n))) => Func::Percentile(*n as f64),
            (Func::Percentile(_), Some(Expr::Number(x))) => Func::Percentile(*x),
            (Func::Percentile(_), _) => {
                return Err(QueryError::new(
                    "expected float argument in percentile()".to_owned(),
                ));
            }
            (func, _) => func,
        };
        Ok(Self { func, field })
    }

    /// The statistics of `mymonit_tsdb` it takes.
    fn statistics(&self) -> Vec<Statistic> {
        match self.func {
            Func::Mean => vec![Statistic::Mean],
            Func::Median => vec![Statistic::Percentile(50.0)],
            Func::Count => vec![Statistic::Count],
            Func::Min => vec![Statistic::Min],
            Func::Max => vec![Statistic::Max],
            Func::Sum => vec![Statistic::Sum],
            Func::Stddev => vec![Statistic::Stddev],
            Func::Spread => vec![Statistic::Min, Statistic::Max],
            Func::First => vec![Statistic::First],
            Func::Last => vec![Statistic::Last],
            Func::Percentile(p) => vec![Statistic::NearestRank(p)],
        }
    }

    /// Whether it picks one point (whose time it can report).
    fn is_selector(&self) -> bool {
        matches!(
            self.func,
            Func::Min | Func::Max | Func::First | Func::Last | Func::Percentile(_)
        )
    }

    /// The value it picks from points in time order, with the point's time; InfluxDB's ties:
    /// first and last take the larger value at equal times, min and max the earlier point.
    fn select(&self, points: &[Point]) -> Option<(i64, f64)> {
        let pick = |better: &dyn Fn(&Point, &Point) -> bool| {
            let mut best = points.first()?;
            for point in &points[1..] {
                if better(point, best) {
                    best = point;
                }
            }
            Some((best.ts, best.value))
        };
        match self.func {
            Func::First => pick(&|a, b| a.ts < b.ts || (a.ts == b.ts && a.value > b.value)),
            Func::Last => pick(&|a, b| a.ts > b.ts || (a.ts == b.ts && a.value > b.value)),
            Func::Min => pick(&|a, b| a.value < b.value),
            Func::Max => pick(&|a, b| a.value > b.value),
            Func::Percentile(p) => {
                let mut sorted: Vec<&Point> = points.iter().collect();
                sorted.sort_by(|a, b| a.value.total_cmp(&b.value));
                let rank = (sorted.len() as f64 * p / 100.0 + 0.5).floor() as i64 - 1;
                let index = usize::try_from(rank).ok().filter(|&i| i < sorted.len())?;
                Some((sorted[index].ts, sorted[index].value))
            }
            _ => None,
        }
    }
}

/// The calls in an expression, each once, in order.
fn collect_calls(expr: &Expr, calls: &mut Vec<Call>) -> Result<(), QueryError> {
    match expr {
        Expr::Call { name, args } => {
            let call = Call::parse(name, args)?;
            if !calls.contains(&call) {
                calls.push(call);
            }
            Ok(())
        }
        Expr::Binary { left, right, .. } => {
            collect_calls(left, calls)?;
            collect_calls(right, calls)
        }
        _ => Ok(()),
    }
}

/// Whether an expression reads a field or tag outside any call (or `*`).
fn has_raw_reference(expr: &Expr) -> bool {
    match expr {
        Expr::VarRef(_) | Expr::Wildcard => true,
        Expr::Binary { left, right, .. } => has_raw_reference(left) || has_raw_reference(right),
        _ => false,
    }
}

/// The names InfluxDB joins into a column's name.
fn names(expr: &Expr, out: &mut Vec<String>) {
    match expr {
        Expr::Call { name, .. } => out.push(name.clone()),
        Expr::VarRef(name) => out.push(name.clone()),
        Expr::Binary { left, right, .. } => {
            names(left, out);
            names(right, out);
        }
        _ => {}
    }
}

/// Column names, made unique as InfluxDB makes them (`mean`, `mean_1`).
fn unique_columns(columns: Vec<String>) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    columns
        .into_iter()
        .map(|name| {
            let count = seen.entry(name.clone()).or_insert(0);
            let unique = if *count == 0 {
                name.clone()
            } else {
                format!("{name}_{count}")
            };
            *count += 1;
            unique
        })
        .collect()
}

/// A field expression of aggregates with its calls resolved to their columns, so that each
/// row is computed without looking calls up again.
enum Compiled {
    /// The value of the call in this column.
    Call(usize),
    /// A constant.
    Number(f64),
    /// An operation.
    Binary(BinaryOp, Box<Compiled>, Box<Compiled>),
    /// Anything else (no value).
    Nothing,
}

impl Compiled {
    fn new(expr: &Expr, calls: &[Call]) -> Self {
        match expr {
            Expr::Integer(n) => Self::Number(*n as f64),
            Expr::Number(x) => Self::Number(*x),
            Expr::Call { name, args } => Call::parse(name, args)
                .ok()
                .and_then(|call| calls.iter().position(|c| *c == call))
                .map_or(Self::Nothing, Self::Call),
            Expr::Binary { op, left, right } => Self::Binary(
                *op,
                Box::new(Self::new(left, calls)),
                Box::new(Self::new(right, calls)),
            ),
            _ => Self::Nothing,
        }
    }

    /// Its value, `column` giving each call's.
    fn value(&self, column: &dyn Fn(usize) -> Option<f64>) -> Option<f64> {
        match self {
            Self::Call(index) => column(*index),
            Self::Number(x) => Some(*x),
            Self::Binary(op, left, right) => {
                arithmetic(*op, left.value(column)?, right.value(column)?)
            }
            Self::Nothing => None,
        }
    }
}

/// InfluxQL's arithmetic (division by zero is zero).
fn arithmetic(op: BinaryOp, a: f64, b: f64) -> Option<f64> {
    Some(match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div if b == 0.0 => 0.0,
        BinaryOp::Div => a / b,
        _ => return None,
    })
}

/// Evaluates an expression of fields (a raw `SELECT`); `lookup` gives the fields' values.
fn evaluate(expr: &Expr, lookup: &dyn Fn(&Expr) -> Option<f64>) -> Option<f64> {
    match expr {
        Expr::Integer(n) => Some(*n as f64),
        Expr::Number(x) => Some(*x),
        Expr::VarRef(_) => lookup(expr),
        Expr::Binary { op, left, right } => {
            arithmetic(*op, evaluate(left, lookup)?, evaluate(right, lookup)?)
        }
        _ => None,
    }
}

/// A group: the values of the `GROUP BY` tags (`""` for a series without the tag).
type GroupKey = Vec<(String, String)>;

/// The limits and formats a statement answers within.
pub struct Context<'a> {
    /// The server.
    pub state: &'a AppState,
    /// The experiment's series.
    pub catalogue: &'a Catalogue,
    /// How times are written.
    pub epoch: Epoch,
    /// `now()`.
    pub now: i64,
}

/// Runs a `SELECT`.
pub async fn select(
    context: &Context<'_>,
    select: &Select,
) -> Result<Vec<SeriesResult>, QueryError> {
    let zone: Option<Tz> = select
        .tz
        .as_deref()
        .map(|name| {
            name.parse()
                .map_err(|_| QueryError::new(format!("unable to find time zone {name}")))
        })
        .transpose()?;
    let mut calls = Vec::new();
    for field in &select.fields {
        collect_calls(&field.expr, &mut calls)?;
    }
    let raw = select
        .fields
        .iter()
        .any(|field| has_raw_reference(&field.expr));
    if raw && !calls.is_empty() {
        return Err(QueryError::new(
            "mixing aggregate and non-aggregate queries is not supported",
        ));
    }
    if calls.is_empty() && select.group_by.time.is_some() {
        return Err(QueryError::new(
            "GROUP BY requires at least one aggregate function",
        ));
    }
    if !raw && calls.is_empty() {
        return Err(QueryError::new("at least 1 non-time field must be queried"));
    }
    let (range, tag_condition) = split_time(select.condition.as_ref(), context.now)?;
    let filter = tag_condition
        .map(|expr| TagFilter::compile(&expr, &|name| context.catalogue.is_field(name)))
        .transpose()?;
    let mut measurements = BTreeSet::new();
    for source in &select.from {
        if let Source::Measurement {
            retention_policy: Some(policy),
            ..
        } = source
            && policy != "autogen"
        {
            return Err(QueryError::new(format!(
                "retention policy not found: {policy}"
            )));
        }
        measurements.extend(context.catalogue.selected(std::slice::from_ref(source))?);
    }
    let mut out = Vec::new();
    for measurement in measurements {
        let series: Vec<&Series> = context
            .catalogue
            .series
            .get(&measurement)
            .into_iter()
            .flatten()
            .filter(|one| filter.as_ref().is_none_or(|f| f.matches(&one.tags)))
            .collect();
        let groups = group(select, &series);
        let answered = if raw {
            raw_rows(context, select, &measurement, groups, range, zone).await?
        } else {
            aggregate_rows(context, select, &calls, &measurement, groups, range, zone).await?
        };
        out.extend(answered);
    }
    Ok(out)
}

/// The series of a measurement by group, in group order.
fn group<'a>(select: &Select, series: &[&'a Series]) -> BTreeMap<GroupKey, Vec<&'a Series>> {
    let keys: Vec<String> = match &select.group_by.tags {
        GroupTags::None => Vec::new(),
        GroupTags::Keys(keys) => keys.clone(),
        GroupTags::All => series
            .iter()
            .flat_map(|one| one.tags.keys())
            .filter(|key| key.as_str() != FIELD_TAG)
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let mut groups: BTreeMap<GroupKey, Vec<&Series>> = BTreeMap::new();
    for one in series {
        let key = keys
            .iter()
            .map(|key| (key.clone(), one.tags.get(key).cloned().unwrap_or_default()))
            .collect();
        groups.entry(key).or_default().push(one);
    }
    groups
}

/// The output tags of a group (none without `GROUP BY` tags).
fn group_tags(select: &Select, key: &GroupKey) -> Option<BTreeMap<String, String>> {
    (!matches!(select.group_by.tags, GroupTags::None)).then(|| key.iter().cloned().collect())
}

/// Rows per series after `ORDER BY`, `OFFSET` and `LIMIT`.
fn page_rows(select: &Select, mut rows: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    if select.descending {
        rows.reverse();
    }
    let limit = if select.page.limit == 0 {
        usize::MAX
    } else {
        select.page.limit
    };
    rows.into_iter()
        .skip(select.page.offset)
        .take(limit)
        .collect()
}

/// Groups after `SOFFSET` and `SLIMIT`.
fn page_series(select: &Select, series: Vec<SeriesResult>) -> Vec<SeriesResult> {
    let limit = if select.series_page.limit == 0 {
        usize::MAX
    } else {
        select.series_page.limit
    };
    series
        .into_iter()
        .skip(select.series_page.offset)
        .take(limit)
        .collect()
}

/// The bounds a statement reads: `[from, to]`, inclusive.
fn bounds(range: TimeRange, default_to: i64) -> (i64, i64) {
    (
        range
            .from
            .unwrap_or(EARLIEST_TIMESTAMP_NS)
            .max(EARLIEST_TIMESTAMP_NS),
        range.to.unwrap_or(default_to).min(END_OF_TIMESTAMPS_NS - 1),
    )
}

/// `SELECT` of aggregates.
async fn aggregate_rows(
    context: &Context<'_>,
    select: &Select,
    calls: &[Call],
    measurement: &str,
    groups: BTreeMap<GroupKey, Vec<&Series>>,
    range: TimeRange,
    zone: Option<Tz>,
) -> Result<Vec<SeriesResult>, QueryError> {
    let mut columns = vec!["time".to_owned()];
    columns.extend(unique_columns(
        select
            .fields
            .iter()
            .map(|field| {
                field.alias.clone().unwrap_or_else(|| {
                    let mut parts = Vec::new();
                    names(&field.expr, &mut parts);
                    parts.join("_")
                })
            })
            .collect(),
    ));
    // Without GROUP BY time and with one selector alone, the answer is that point (and its time).
    if select.group_by.time.is_none() && calls.len() == 1 && calls[0].is_selector() {
        return selected_points(
            context,
            select,
            &calls[0],
            measurement,
            groups,
            range,
            zone,
            columns,
        )
        .await;
    }
    let default_to = if select.group_by.time.is_some() {
        context.now
    } else {
        END_OF_TIMESTAMPS_NS - 1
    };
    let (mut from, to) = bounds(range, default_to);
    if range.is_empty() || from > to {
        return Ok(Vec::new());
    }
    // Each group starts at its own first point when the statement gives no start.
    let mut group_starts: BTreeMap<GroupKey, i64> = BTreeMap::new();
    if range.from.is_none() {
        let mut overall: Option<i64> = None;
        for (key, series) in &groups {
            let ids: Vec<i64> = series.iter().map(|one| one.series_id).collect();
            if let Some(first) = earliest(context.state, &ids).await.map_err(store_error)? {
                group_starts.insert(key.clone(), first);
                overall = Some(overall.map_or(first, |o: i64| o.min(first)));
            }
        }
        match overall {
            Some(first) => from = first,
            None => return Ok(Vec::new()),
        }
    }
    if from > to {
        return Ok(Vec::new());
    }
    let max = context.state.settings.api.max_buckets;
    let starts = match select.group_by.time {
        Some((interval, offset)) => window_starts(from, to, interval, offset, zone, max)
            .ok_or_else(|| {
                QueryError::new(format!(
                    "the query would answer more than {max} windows per series \
                     (api.max_buckets): narrow the range or widen the GROUP BY time interval"
                ))
            })?,
        None => vec![from],
    };
    let mut boundaries = starts.clone();
    let last_end = match select.group_by.time {
        Some((interval, offset)) => window(to, interval, offset, zone).1,
        None => to.saturating_add(1),
    };
    boundaries.push(last_end.max(to.saturating_add(1)));
    // One aggregation per (group, field), with every statistic that field's calls take.
    let mut statistics: Vec<Statistic> = Vec::new();
    for call in calls {
        for statistic in call.statistics() {
            if !statistics.contains(&statistic) {
                statistics.push(statistic);
            }
        }
    }
    let fields: BTreeSet<&str> = calls.iter().map(|call| call.field.as_str()).collect();
    let mut inputs = Vec::new();
    for (key, series) in &groups {
        for one in series {
            let field = field_of(&one.tags);
            if fields.contains(field) {
                inputs.push(Input {
                    group: (key.clone(), field.to_owned()),
                    tag_value: None,
                    series_id: one.series_id,
                });
            }
        }
    }
    let figures = aggregate_groups(
        context.state,
        inputs,
        &statistics,
        &boundaries,
        (from, to.saturating_add(1)),
    )
    .await
    .map_err(store_error)?;
    let statistic_index = |statistic: &Statistic| statistics.iter().position(|s| s == statistic);
    let mut out = Vec::new();
    for key in groups.keys() {
        // The call columns, one value per window; `None` where the window has no point.
        let mut call_columns: Vec<Vec<Option<f64>>> = Vec::with_capacity(calls.len());
        let mut window_has_points = vec![false; starts.len()];
        for call in calls {
            let buckets = figures.get(&(key.clone(), call.field.clone()));
            let column: Vec<Option<f64>> = (0..starts.len())
                .map(|index| {
                    let figures = buckets?.get(index)?.1.as_ref()?;
                    window_has_points[index] = true;
                    let value =
                        |statistic: Statistic| match figures.get(statistic_index(&statistic)?)? {
                            Figure::Integer(n) => Some(*n as f64),
                            Figure::Number(x) => Some(*x),
                            Figure::Missing => None,
                        };
                    match call.func {
                        Func::Spread => Some(value(Statistic::Max)? - value(Statistic::Min)?),
                        _ => value(call.statistics().remove(0)),
                    }
                })
                .collect();
            call_columns.push(column);
        }
        if !window_has_points.iter().any(|&has| has) {
            continue;
        }
        // Windows before the group's own first point are not its own.
        let first_window = match (range.from, group_starts.get(key), select.group_by.time) {
            (None, Some(&first), Some((interval, offset))) => {
                let start = window(first, interval, offset, zone).0;
                starts.partition_point(|&s| s < start)
            }
            _ => 0,
        };
        let times = &starts[first_window..];
        for (call, column) in calls.iter().zip(call_columns.iter_mut()) {
            let column = &mut column[first_window..];
            match (select.fill, call.func) {
                (Fill::Null | Fill::None, Func::Count) => {
                    for value in column.iter_mut() {
                        value.get_or_insert(0.0);
                    }
                }
                // A count is an integer: InfluxDB fills it with the number truncated.
                (Fill::Number(number), Func::Count) => {
                    fill_column(times, column, Fill::Number(number.trunc()));
                }
                (fill, _) => fill_column(times, column, fill),
            }
        }
        let compiled: Vec<Compiled> = select
            .fields
            .iter()
            .map(|field| Compiled::new(&field.expr, calls))
            .collect();
        let mut rows = Vec::with_capacity(times.len());
        for (offset, &start) in times.iter().enumerate() {
            let index = first_window + offset;
            if select.fill == Fill::None && !window_has_points[index] {
                continue;
            }
            let time = match select.group_by.time {
                Some(_) => start,
                None => range.from.unwrap_or(0),
            };
            let mut row = Vec::with_capacity(compiled.len() + 1);
            row.push(context.epoch.format(time, zone));
            for expr in &compiled {
                let value = expr.value(&|column| call_columns[column][index]);
                row.push(value.map_or(Value::Null, number));
            }
            rows.push(row);
        }
        out.push(SeriesResult {
            name: measurement.to_owned(),
            tags: group_tags(select, key),
            columns: columns.clone(),
            values: page_rows(select, rows),
        });
    }
    Ok(page_series(select, out))
}

/// Reads the points of series in `[from, to]`, in time order.
async fn points_of(
    context: &Context<'_>,
    series: &[&Series],
    (from, to): (i64, i64),
    max_points: Option<usize>,
) -> Result<Vec<(usize, Vec<Point>)>, QueryError> {
    let mut read = Vec::with_capacity(series.len());
    // Points certainly in the range (chunks wholly inside it), counted before decoding any.
    let mut certain = 0usize;
    for (index, one) in series.iter().enumerate() {
        let data = read_series(
            context.state,
            one.series_id,
            from,
            to.saturating_add(1),
            None,
        )
        .await
        .map_err(store_error)?;
        certain += data
            .chunks
            .iter()
            .filter(|(summary, _)| summary.start.0 >= from && summary.end.0 <= to)
            .map(|(summary, _)| summary.count as usize)
            .sum::<usize>();
        if let Some(max) = max_points
            && certain > max
        {
            return Err(QueryError::new(format!(
                "the range holds more than {max} points (api.max_stats_cells): narrow the \
                 time range, add LIMIT, or aggregate with GROUP BY time"
            )));
        }
        read.push((index, data));
    }
    off_thread(move || {
        read.into_iter()
            .map(|(index, data)| Ok((index, data.points(from, to.saturating_add(1))?)))
            .collect()
    })
    .await
    .map_err(store_error)
}

/// One selector without `GROUP BY time`: its point, with its own time, per group.
#[allow(clippy::too_many_arguments)]
async fn selected_points(
    context: &Context<'_>,
    select: &Select,
    call: &Call,
    measurement: &str,
    groups: BTreeMap<GroupKey, Vec<&Series>>,
    range: TimeRange,
    zone: Option<Tz>,
    columns: Vec<String>,
) -> Result<Vec<SeriesResult>, QueryError> {
    if range.is_empty() {
        return Ok(Vec::new());
    }
    let bounds = bounds(range, END_OF_TIMESTAMPS_NS - 1);
    let mut out = Vec::new();
    for (key, series) in &groups {
        let series: Vec<&Series> = series
            .iter()
            .copied()
            .filter(|one| field_of(&one.tags) == call.field)
            .collect();
        let mut points: Vec<Point> = points_of(context, &series, bounds, None)
            .await?
            .into_iter()
            .flat_map(|(_, points)| points)
            .collect();
        points.sort_by_key(Point::key);
        let Some((time, value)) = call.select(&points) else {
            continue;
        };
        let mut row = vec![context.epoch.format(time, zone)];
        for field in &select.fields {
            let compiled = Compiled::new(&field.expr, std::slice::from_ref(call));
            row.push(compiled.value(&|_| Some(value)).map_or(Value::Null, number));
        }
        out.push(SeriesResult {
            name: measurement.to_owned(),
            tags: group_tags(select, key),
            columns: columns.clone(),
            values: page_rows(select, vec![row]),
        });
    }
    Ok(page_series(select, out))
}

/// One InfluxDB series' rows: by time and occurrence at that time, the fields' values.
type RowsAtTimes<'a> = BTreeMap<(i64, usize), BTreeMap<&'a str, f64>>;

/// A column of a raw `SELECT`: a field expression, or a tag.
enum RawColumn {
    /// An expression of fields.
    Expr(Expr),
    /// A tag's value.
    Tag(String),
}

/// `SELECT` of fields (and tags): one row per time of each series.
async fn raw_rows(
    context: &Context<'_>,
    select: &Select,
    measurement: &str,
    groups: BTreeMap<GroupKey, Vec<&Series>>,
    range: TimeRange,
    zone: Option<Tz>,
) -> Result<Vec<SeriesResult>, QueryError> {
    let catalogue = context.catalogue;
    let grouped: BTreeSet<String> = groups
        .keys()
        .next()
        .map(|key| key.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let mut names = Vec::new();
    let mut raw_columns = Vec::new();
    for field in &select.fields {
        match &field.expr {
            Expr::Wildcard => {
                let mut all: BTreeMap<String, RawColumn> = BTreeMap::new();
                for tags in catalogue.series_of(measurement) {
                    let name = field_of(tags).to_owned();
                    all.insert(name.clone(), RawColumn::Expr(Expr::VarRef(name)));
                    for key in tags.keys() {
                        if key != FIELD_TAG && !grouped.contains(key) {
                            all.insert(key.clone(), RawColumn::Tag(key.clone()));
                        }
                    }
                }
                for (name, column) in all {
                    names.push(name);
                    raw_columns.push(column);
                }
            }
            Expr::VarRef(name) if !catalogue.is_field(name) => {
                names.push(field.alias.clone().unwrap_or_else(|| name.clone()));
                raw_columns.push(RawColumn::Tag(name.clone()));
            }
            expr => {
                let mut parts = Vec::new();
                self::names(expr, &mut parts);
                names.push(field.alias.clone().unwrap_or_else(|| parts.join("_")));
                raw_columns.push(RawColumn::Expr(expr.clone()));
            }
        }
    }
    let mut columns = vec!["time".to_owned()];
    columns.extend(unique_columns(names));
    let mut wanted_fields = BTreeSet::new();
    for column in &raw_columns {
        if let RawColumn::Expr(expr) = column {
            let mut parts = Vec::new();
            self::names(expr, &mut parts);
            wanted_fields.extend(parts);
        }
    }
    if range.is_empty() {
        return Ok(Vec::new());
    }
    let bounds = bounds(range, END_OF_TIMESTAMPS_NS - 1);
    let max_cells = context.state.settings.api.max_stats_cells;
    let mut cells = 0usize;
    let mut out = Vec::new();
    for (key, series) in &groups {
        let series: Vec<&Series> = series
            .iter()
            .copied()
            .filter(|one| wanted_fields.contains(field_of(&one.tags)))
            .collect();
        if series.is_empty() {
            continue;
        }
        // With LIMIT, each InfluxDB series gives at most OFFSET + LIMIT rows (its first, or its
        // last with ORDER BY time DESC); without, the answer's size bounds what is read.
        let keep = (select.page.limit > 0).then(|| select.page.offset + select.page.limit);
        let max_points = keep.is_none().then_some(max_cells);
        let read = points_of(context, &series, bounds, max_points).await?;
        // InfluxDB's series: the tags without `_field`; their fields' points at one time make
        // one row (the k-th points of each field at a time share the k-th row).
        let mut by_series: BTreeMap<BTreeMap<&str, &str>, RowsAtTimes> = BTreeMap::new();
        for (index, points) in &read {
            let tags = &series[*index].tags;
            let identity: BTreeMap<&str, &str> = tags
                .iter()
                .filter(|(k, _)| k.as_str() != FIELD_TAG)
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let field = field_of(tags);
            let rows = by_series.entry(identity).or_default();
            let mut occurrence = 0;
            let mut previous = None;
            for point in points {
                occurrence = if previous == Some(point.ts) {
                    occurrence + 1
                } else {
                    0
                };
                previous = Some(point.ts);
                rows.entry((point.ts, occurrence))
                    .or_default()
                    .insert(field, point.value);
            }
        }
        let mut rows: Vec<(i64, usize, Vec<Value>)> = Vec::new();
        for (order, (identity, times)) in by_series.iter().enumerate() {
            let times: Box<dyn Iterator<Item = _>> = if select.descending {
                Box::new(times.iter().rev())
            } else {
                Box::new(times.iter())
            };
            for ((ts, _), fields) in times.take(keep.unwrap_or(usize::MAX)) {
                let mut row = vec![context.epoch.format(*ts, zone)];
                for column in &raw_columns {
                    row.push(match column {
                        RawColumn::Tag(key) => identity
                            .get(key.as_str())
                            .map_or(Value::Null, |value| Value::from(*value)),
                        RawColumn::Expr(expr) => {
                            let lookup = |expr: &Expr| match expr {
                                Expr::VarRef(name) => fields.get(name.as_str()).copied(),
                                _ => None,
                            };
                            evaluate(expr, &lookup).map_or(Value::Null, number)
                        }
                    });
                }
                cells += row.len();
                if cells > max_cells {
                    return Err(QueryError::new(format!(
                        "the answer would hold more than {max_cells} values (api.max_stats_cells): \
                         narrow the time range, add LIMIT, or aggregate with GROUP BY time"
                    )));
                }
                rows.push((*ts, order, row));
            }
        }
        rows.sort_by_key(|(ts, order, _)| (*ts, *order));
        let values = rows.into_iter().map(|(_, _, row)| row).collect();
        let values = page_rows(select, values);
        out.push(SeriesResult {
            name: measurement.to_owned(),
            tags: group_tags(select, key),
            columns: columns.clone(),
            values,
        });
    }
    Ok(page_series(select, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(values: &[(i64, f64)]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(seq, &(ts, value))| Point {
                ts,
                seq: seq as i64,
                value,
            })
            .collect()
    }

    #[test]
    fn selectors_pick_as_influxdb_does() {
        let data = points(&[(1, 5.0), (1, 7.0), (2, 1.0), (3, 7.0), (4, 1.0)]);
        let call = |func| Call {
            func,
            field: "value".into(),
        };
        assert_eq!(call(Func::First).select(&data), Some((1, 7.0)));
        assert_eq!(call(Func::Last).select(&data), Some((4, 1.0)));
        assert_eq!(call(Func::Min).select(&data), Some((2, 1.0)));
        assert_eq!(call(Func::Max).select(&data), Some((1, 7.0)));
        // Sorted by value: 1, 1, 5, 7, 7; rank floor(5 × 0.5 + 0.5) = 3.
        assert_eq!(call(Func::Percentile(50.0)).select(&data), Some((1, 5.0)));
        assert_eq!(call(Func::Percentile(5.0)).select(&data), None);
    }

    #[test]
    fn column_names_follow_influxdb() {
        let parsed = mymonit_influxql::parse("SELECT mean(v) * 2, mean(w), count(v) / 3, v FROM m")
            .unwrap_or_default();
        let Some(mymonit_influxql::Parsed::Statement(mymonit_influxql::ast::Statement::Select(
            select,
        ))) = parsed.into_iter().next()
        else {
            panic!("does not parse");
        };
        let columns: Vec<String> = select
            .fields
            .iter()
            .map(|field| {
                let mut parts = Vec::new();
                names(&field.expr, &mut parts);
                parts.join("_")
            })
            .collect();
        assert_eq!(unique_columns(columns), ["mean", "mean_1", "count", "v"]);
        assert_eq!(
            unique_columns(vec!["mean".into(), "mean".into(), "mean".into()]),
            ["mean", "mean_1", "mean_2"]
        );
    }
}
