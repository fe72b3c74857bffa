//! The deadline a gRPC client sets: the `grpc-timeout` header.
//!
//! The header is 1 to 8 digits and a unit: `H` hours, `M` minutes, `S`
//! seconds, `m` milliseconds, `u` microseconds, `n` nanoseconds (the gRPC
//! over HTTP/2 spec). tonic ends a call whose timeout passes with
//! `CANCELLED`; so that the client learns `DEADLINE_EXCEEDED` instead, the
//! call gets the client's timeout less a margin ([`call_timeout`]): it times
//! out, and is answered, just before tonic would cancel it.

use std::time::Duration;

/// The longest margin taken off a client's timeout.
const MAX_MARGIN: Duration = Duration::from_millis(20);

/// Parses a `grpc-timeout` value; `None` for a malformed one.
pub(crate) fn parse(value: &str) -> Option<Duration> {
    let unit = value.chars().last()?;
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(n * 3600),
        'M' => Duration::from_secs(n * 60),
        'S' => Duration::from_secs(n),
        'm' => Duration::from_millis(n),
        'u' => Duration::from_micros(n),
        'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The timeout of a call whose client allows `client` (`None`: no
/// deadline), under the gateway's own `gateway` (`[gateway] timeout_ms`):
/// the shorter, where the client's loses a twentieth of itself (at most
/// 20 ms) as the margin described in the module docs.
pub(crate) fn call_timeout(
    client: Option<Duration>,
    gateway: Option<Duration>,
) -> Option<Duration> {
    let client = client.map(|c| c.saturating_sub((c / 20).min(MAX_MARGIN)));
    match (client, gateway) {
        (Some(c), Some(g)) => Some(c.min(g)),
        (c, g) => c.or(g),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(parse("7n"), Some(Duration::from_nanos(7)));
        for bad in ["", "m", "123456789m", "5s", "-5S", "5 S", "1.5S", "5é"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_client_deadline_loses_a_margin_and_the_gateway_caps_it() {
        let ms = Duration::from_millis;
        assert_eq!(call_timeout(None, None), None);
        assert_eq!(call_timeout(None, Some(ms(500))), Some(ms(500)));
        assert_eq!(call_timeout(Some(ms(200)), None), Some(ms(190)));
        assert_eq!(call_timeout(Some(ms(10_000)), None), Some(ms(9_980)));
        assert_eq!(call_timeout(Some(ms(10_000)), Some(ms(300))), Some(ms(300)));
        assert_eq!(
            call_timeout(Some(Duration::ZERO), None),
            Some(Duration::ZERO)
        );
    }
}
