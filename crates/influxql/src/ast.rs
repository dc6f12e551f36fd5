//! The statements MyMonit answers, as the parser reads them.

/// One statement of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `SHOW DATABASES`.
    ShowDatabases,
    /// `SHOW MEASUREMENTS [ON db] [WITH MEASUREMENT =|=~ …] [WHERE …] [LIMIT n] [OFFSET n]`.
    ShowMeasurements {
        /// `ON db`.
        on: Option<String>,
        /// `WITH MEASUREMENT`.
        with: Option<NameMatch>,
        /// `WHERE`, on tags.
        condition: Option<Expr>,
        /// `LIMIT` and `OFFSET`.
        page: Page,
    },
    /// `SHOW FIELD KEYS [ON db] [FROM m] [LIMIT n] [OFFSET n]`.
    ShowFieldKeys {
        /// `ON db`.
        on: Option<String>,
        /// `FROM`.
        from: Vec<Source>,
        /// `LIMIT` and `OFFSET`.
        page: Page,
    },
    /// `SHOW TAG KEYS [ON db] [FROM m] [WHERE …] [LIMIT n] [OFFSET n]`.
    ShowTagKeys {
        /// `ON db`.
        on: Option<String>,
        /// `FROM`.
        from: Vec<Source>,
        /// `WHERE`, on tags.
        condition: Option<Expr>,
        /// `LIMIT` and `OFFSET`.
        page: Page,
    },
    /// `SHOW TAG VALUES [ON db] [FROM m] WITH KEY … [WHERE …] [LIMIT n] [OFFSET n]`.
    ShowTagValues {
        /// `ON db`.
        on: Option<String>,
        /// `FROM`.
        from: Vec<Source>,
        /// `WITH KEY`.
        key: KeyMatch,
        /// `WHERE`, on tags.
        condition: Option<Expr>,
        /// `LIMIT` and `OFFSET`.
        page: Page,
    },
    /// `SHOW RETENTION POLICIES [ON db]`.
    ShowRetentionPolicies {
        /// `ON db`.
        on: Option<String>,
    },
    /// `CREATE DATABASE name [WITH …]`: Telegraf sends it at start.
    CreateDatabase {
        /// The database.
        name: String,
    },
    /// `SELECT …`.
    Select(Box<Select>),
}

/// `LIMIT` and `OFFSET`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    /// `LIMIT n` (0: none).
    pub limit: usize,
    /// `OFFSET n`.
    pub offset: usize,
}

/// `= name` or `=~ /re/` (and their negations) on a measurement's name.
#[derive(Debug, Clone, PartialEq)]
pub enum NameMatch {
    /// `= name`.
    Equal(String),
    /// `=~ /re/`.
    Regex(String),
}

/// `WITH KEY …` of `SHOW TAG VALUES`.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyMatch {
    /// `= "k"`.
    Equal(String),
    /// `!= "k"`.
    NotEqual(String),
    /// `=~ /re/`.
    Regex(String),
    /// `!~ /re/`.
    NotRegex(String),
    /// `IN ("a", "b")`.
    In(Vec<String>),
}

/// A `FROM` source.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// `[[db.]rp.]name`.
    Measurement {
        /// The database, when named.
        database: Option<String>,
        /// The retention policy, when named (MyMonit has one, `autogen`).
        retention_policy: Option<String>,
        /// The measurement.
        name: String,
    },
    /// `/re/`: every measurement whose name matches.
    Regex(String),
}

/// A `SELECT` statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    /// The selected expressions.
    pub fields: Vec<Field>,
    /// `FROM`.
    pub from: Vec<Source>,
    /// `WHERE`.
    pub condition: Option<Expr>,
    /// `GROUP BY`.
    pub group_by: GroupBy,
    /// `fill(…)`.
    pub fill: Fill,
    /// `ORDER BY time DESC`.
    pub descending: bool,
    /// `LIMIT` and `OFFSET` (rows per series).
    pub page: Page,
    /// `SLIMIT` and `SOFFSET` (series).
    pub series_page: Page,
    /// `tz('…')`.
    pub tz: Option<String>,
}

/// One selected expression and its alias.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The expression.
    pub expr: Expr,
    /// `AS alias`.
    pub alias: Option<String>,
}

/// `GROUP BY`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupBy {
    /// `time(interval[, offset])`, in nanoseconds.
    pub time: Option<(i64, i64)>,
    /// The tags.
    pub tags: GroupTags,
}

/// The tags of `GROUP BY`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum GroupTags {
    /// No tag.
    #[default]
    None,
    /// These keys.
    Keys(Vec<String>),
    /// `*`: every tag.
    All,
}

/// `fill(…)`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Fill {
    /// `fill(null)` (the default): empty windows are listed with null.
    #[default]
    Null,
    /// `fill(none)`: empty windows are left out.
    None,
    /// `fill(previous)`: the previous window's value.
    Previous,
    /// `fill(linear)`: interpolated between the windows around.
    Linear,
    /// `fill(<number>)`.
    Number(f64),
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A field or tag (`"value"`, `host`), with its `::field`/`::tag` hint if any.
    VarRef(String),
    /// `*`.
    Wildcard,
    /// A number.
    Number(f64),
    /// An integer.
    Integer(i64),
    /// A duration, in nanoseconds.
    Duration(i64),
    /// A string.
    Str(String),
    /// A regular expression.
    Regex(String),
    /// `true` or `false`.
    Bool(bool),
    /// `now()`.
    Now,
    /// A function call.
    Call {
        /// The function, lower-case.
        name: String,
        /// Its arguments.
        args: Vec<Expr>,
    },
    /// `a op b`.
    Binary {
        /// `AND`, `OR`, `=`, `!=`, `<`, `<=`, `>`, `>=`, `=~`, `!~`, `+`, `-`, `*`, `/`.
        op: BinaryOp,
        /// The left side.
        left: Box<Expr>,
        /// The right side.
        right: Box<Expr>,
    },
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `AND`.
    And,
    /// `OR`.
    Or,
    /// `=`.
    Eq,
    /// `!=` or `<>`.
    NotEq,
    /// `<`.
    Lt,
    /// `<=`.
    LtEq,
    /// `>`.
    Gt,
    /// `>=`.
    GtEq,
    /// `=~`.
    Match,
    /// `!~`.
    NotMatch,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
}

impl BinaryOp {
    /// How tightly it binds (higher binds tighter).
    pub fn precedence(self) -> u8 {
        match self {
            Self::Or => 1,
            Self::And => 2,
            Self::Eq
            | Self::NotEq
            | Self::Lt
            | Self::LtEq
            | Self::Gt
            | Self::GtEq
            | Self::Match
            | Self::NotMatch => 3,
            Self::Add | Self::Sub => 4,
            Self::Mul | Self::Div => 5,
        }
    }

    /// As InfluxQL writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::And => "AND",
            Self::Or => "OR",
            Self::Eq => "=",
            Self::NotEq => "!=",
            Self::Lt => "<",
            Self::LtEq => "<=",
            Self::Gt => ">",
            Self::GtEq => ">=",
            Self::Match => "=~",
            Self::NotMatch => "!~",
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
        }
    }
}

impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expr::VarRef(name) => {
                write!(f, "\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
            }
            Expr::Wildcard => f.write_str("*"),
            Expr::Number(x) => write!(f, "{x}"),
            Expr::Integer(n) => write!(f, "{n}"),
            Expr::Duration(ns) => write!(f, "{ns}ns"),
            Expr::Str(text) => write!(f, "'{}'", text.replace('\\', "\\\\").replace('\'', "\\'")),
            Expr::Regex(re) => write!(f, "/{}/", re.replace('/', "\\/")),
            Expr::Bool(value) => write!(f, "{value}"),
            Expr::Now => f.write_str("now()"),
            Expr::Call { name, args } => {
                write!(f, "{name}(")?;
                for (index, arg) in args.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{arg}")?;
                }
                f.write_str(")")
            }
            Expr::Binary { op, left, right } => {
                // Operands that are operations themselves in parentheses, so that the text
                // reads back as the same tree.
                let side = |expr: &Expr| match expr {
                    Expr::Binary { .. } => format!("({expr})"),
                    other => other.to_string(),
                };
                write!(f, "{} {} {}", side(left), op.as_str(), side(right))
            }
        }
    }
}
