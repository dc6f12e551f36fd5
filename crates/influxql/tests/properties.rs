//! Properties of the parser: it never panics, and conditions read back as they were written.

use mymonit_influxql::{
    Parsed,
    ast::{BinaryOp, Expr, Statement},
    parse,
};
use proptest::prelude::*;

fn tag_key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z_][a-z0-9_]{0,8}", "[a-z ,=\"'\\\\.-]{1,8}"]
}

fn comparison() -> impl Strategy<Value = Expr> {
    let value = prop_oneof![
        "[ -~]{0,10}".prop_map(Expr::Str),
        "[a-z0-9.*^$|]{1,8}".prop_map(Expr::Regex),
    ];
    (tag_key(), value, any::<bool>()).prop_map(|(key, value, negated)| {
        let op = match (&value, negated) {
            (Expr::Regex(_), false) => BinaryOp::Match,
            (Expr::Regex(_), true) => BinaryOp::NotMatch,
            (_, false) => BinaryOp::Eq,
            (_, true) => BinaryOp::NotEq,
        };
        Expr::Binary {
            op,
            left: Box::new(Expr::VarRef(key)),
            right: Box::new(value),
        }
    })
}

fn condition() -> impl Strategy<Value = Expr> {
    comparison().prop_recursive(4, 16, 2, |inner| {
        (inner.clone(), inner, any::<bool>()).prop_map(|(left, right, and)| Expr::Binary {
            op: if and { BinaryOp::And } else { BinaryOp::Or },
            left: Box::new(left),
            right: Box::new(right),
        })
    })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
        let _ = parse(&text);
    }

    #[test]
    fn query_like_text_never_panics(
        words in proptest::collection::vec(
            prop_oneof![
                Just("SELECT"), Just("mean(\"value\")"), Just("FROM"), Just("\"m\""), Just("WHERE"),
                Just("time"), Just(">="), Just("now()"), Just("-"), Just("6h"), Just("AND"),
                Just("GROUP"), Just("BY"), Just("time(1m)"), Just("fill(linear)"), Just("/re/"),
                Just("=~"), Just("'a'"), Just(","), Just(";"), Just("("), Just(")"), Just("SHOW"),
                Just("TAG"), Just("VALUES"), Just("WITH"), Just("KEY"), Just("="), Just("LIMIT"), Just("1"),
            ],
            0..24,
        )
    ) {
        let _ = parse(&words.join(" "));
    }

    #[test]
    fn conditions_read_back_as_written(expr in condition()) {
        let text = format!("SELECT \"value\" FROM \"m\" WHERE {expr}");
        let parsed = parse(&text);
        let condition = match parsed {
            Ok(mut statements) => match statements.remove(0) {
                Parsed::Statement(Statement::Select(select)) => select.condition,
                other => panic!("{text}: {other:?}"),
            },
            Err(err) => panic!("{text}: {err}"),
        };
        prop_assert_eq!(condition, Some(expr));
    }
}
