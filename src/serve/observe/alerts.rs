//! The alert rules of `deploy/prometheus/alerts.yml`, read by serve itself so that
//! the ops page judges with the very thresholds Prometheus alerts on: change a number
//! in the file and both follow. Only what the page needs is read: each rule's name,
//! severity, `for:` and the numbers its expression compares against, in order.

use std::time::Duration;

/// The rules file, as deployed beside Prometheus.
const RULES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/prometheus/alerts.yml"
));

/// One alert rule, as far as the ops page needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub severity: String,
    /// How long the condition must hold before the alert fires.
    pub hold: Duration,
    /// The numbers the expression compares against (`> 0.8`, `== 2`), in order.
    pub thresholds: Vec<f64>,
    /// The range its rates and increases look back over (`[5m]`), if any.
    pub range: Option<Duration>,
    pub summary: String,
}

/// The deployed rules.
pub fn rules() -> Vec<Rule> {
    parse(RULES)
}

/// Reads the rules from an alerts file: a block per `- alert:` line.
pub fn parse(text: &str) -> Vec<Rule> {
    let mut rules = Vec::new();
    let mut current: Option<(Rule, String)> = None;
    let mut in_expr = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            rules.extend(current.take().map(finish));
            let rule = Rule {
                name: name.trim().to_owned(),
                severity: String::new(),
                hold: Duration::ZERO,
                thresholds: Vec::new(),
                range: None,
                summary: String::new(),
            };
            current = Some((rule, String::new()));
            in_expr = false;
            continue;
        }
        let Some((rule, expr)) = current.as_mut() else {
            continue;
        };
        if let Some(value) = trimmed.strip_prefix("expr:") {
            expr.push_str(value);
            in_expr = value.trim() == "|";
        } else if in_expr && line.starts_with("          ") {
            expr.push(' ');
            expr.push_str(trimmed);
        } else {
            in_expr = false;
            if let Some(value) = trimmed.strip_prefix("for:") {
                rule.hold = crate::units::parse_duration(value.trim()).unwrap_or_default();
            } else if let Some(value) = trimmed.strip_prefix("severity:") {
                rule.severity = value.trim().to_owned();
            } else if let Some(value) = trimmed.strip_prefix("summary:") {
                rule.summary = value.trim().trim_matches('"').to_owned();
            }
        }
    }
    rules.extend(current.map(finish));
    rules
}

fn finish((mut rule, expr): (Rule, String)) -> Rule {
    rule.thresholds = comparisons(&expr);
    rule.range = expr
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .and_then(|(range, _)| crate::units::parse_duration(range).ok());
    rule
}

/// The numbers a PromQL expression compares against: what follows `>`, `<`, `>=`,
/// `<=` or `==` (a label matcher's `=~` or `=` is not a comparison).
pub fn comparisons(expr: &str) -> Vec<f64> {
    let mut found = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find(['>', '<', '=']) {
        let (op, after) = rest[at..].split_at(comparison_len(&rest[at..]));
        rest = after;
        if op.is_empty() {
            rest = &rest[1..];
            continue;
        }
        let number: String = after
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        if let Ok(value) = number.parse() {
            found.push(value);
        }
    }
    found
}

/// The length of the comparison operator at the start of `text`, 0 if it is none.
fn comparison_len(text: &str) -> usize {
    for op in [">=", "<=", "==", ">", "<"] {
        if text.starts_with(op) {
            return op.len();
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_skip_label_matchers() {
        assert_eq!(
            comparisons(r#"max by (source) (x{source=~"espn|kalshi"}) == 2"#),
            vec![2.0]
        );
        assert_eq!(comparisons("a / b > 0.05"), vec![0.05]);
        assert_eq!(comparisons("a / b < 0.4 and c > 0.01"), vec![0.4, 0.01]);
        assert_eq!(
            comparisons("histogram_quantile(0.99, sum(rate(x[5m]))) > 0.25"),
            vec![0.25]
        );
    }

    #[test]
    fn the_deployed_rules_are_read_with_their_thresholds() {
        let rules = rules();
        let rule = |name: &str| {
            rules
                .iter()
                .find(|r| r.name == name)
                .unwrap_or_else(|| panic!("{name} in alerts.yml"))
                .clone()
        };
        assert_eq!(rule("ApiSportsQuotaHigh").thresholds, vec![0.8]);
        assert_eq!(rule("ApiSportsQuotaHigh").hold, Duration::from_secs(60));
        assert_eq!(rule("HighErrorRate").thresholds, vec![0.05]);
        assert_eq!(rule("HighErrorRate").severity, "page");
        assert_eq!(rule("HighErrorRate").range, Some(Duration::from_secs(300)));
        assert_eq!(
            rule("ScoresCacheHitRateLow").range,
            Some(Duration::from_secs(900))
        );
        assert_eq!(rule("CircuitBreakerOpen").range, None);
        assert_eq!(rule("ScoresCacheHitRateLow").thresholds, vec![0.4, 0.01]);
        assert_eq!(rule("CircuitBreakerOpen").thresholds, vec![2.0]);
        assert_eq!(rule("InfluxDBWriteFailures").thresholds, vec![0.0, 0.0]);
        assert_eq!(rule("DeliveryP99AboveBudget").thresholds, vec![0.25]);
        assert_eq!(rule("LiveGameSilent").thresholds, vec![30.0, 1.0]);
        assert!(rule("LiveGameSilent").summary.starts_with("Live game"));
    }
}
